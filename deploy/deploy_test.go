// Package deploy_test checks that the deployment files agree with the
// binary: the ports, paths, probes, timeouts and config that the Kubernetes
// manifests, the Dockerfile and the systemd unit repeat from it. Anything
// that only one file says is left to that file.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/envelope-proxy/envelope-proxy/config"
	"go.yaml.in/yaml/v3"
)

// The paths every deployment shares with the binary's documentation.
const (
	configPath = "/etc/envelope-proxy/config.yaml"
	binaryPath = "/usr/local/bin/envelope-proxy"
	proxyName  = "envelope-proxy"
)

// check is one row of a table: got is what a file says, want what the
// binary needs, and ok whether they agree.
type check struct {
	name, got, want string
	ok              bool
}

// eq is a check that got equals want.
func eq(name, got, want string) check {
	return check{name: name, got: got, want: want, ok: got == want}
}

// longer is a check that got outlasts want, for the stop timeouts that
// must cover the binary's own shutdown.
func longer(name string, got, want time.Duration) check {
	return check{name: name, got: got.String(), want: "more than " + want.String(), ok: got > want}
}

// run runs each check as a subtest.
func run(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !c.ok {
				t.Errorf("got %q; want %q", c.got, c.want)
			}
		})
	}
}

// port returns the port of a host:port address, failing the test if addr
// is not one.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// manifest is a Kubernetes object, decoded only as far as the checks read
// it: a ConfigMap's data, a Service's ports, a Deployment's pod template.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Ports []struct {
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// podSpec is a pod template's spec.
type podSpec struct {
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		EmptyDir  any    `yaml:"emptyDir"`
		ConfigMap *struct {
			Name  string `yaml:"name"`
			Items []any  `yaml:"items"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

// container is one container of a pod. A probe's port is read as text so
// that a named port stays a name.
type container struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  probe `yaml:"livenessProbe"`
	ReadinessProbe probe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// probe is a liveness or readiness probe, of which only httpGet is read.
type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// String describes the probe as "path on port".
func (p probe) String() string { return p.HTTPGet.Path + " on " + p.HTTPGet.Port }

// port returns the container port called name, or "".
func (c container) port(name string) string {
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(p.ContainerPort)
		}
	}
	return ""
}

// preStop returns the container's preStop sleep.
func (c container) preStop() time.Duration {
	return time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
}

// readManifests decodes every document of every manifest directly in dir;
// kustomization.yaml is no Kubernetes object and is left out.
func readManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []manifest
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m manifest
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			objs = append(objs, m)
		}
	}
	return objs
}

// find returns the object of kind called name (any name if name is ""),
// failing the test if there is none.
func find(t *testing.T, objs []manifest, kind, name string) manifest {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.Metadata.Name == name) {
			return o
		}
	}
	t.Fatalf("no %s %q", kind, name)
	return manifest{}
}

// containerNamed returns the container called name, failing the test if
// there is none.
func containerNamed(t *testing.T, pod podSpec, name string) container {
	t.Helper()
	for _, c := range pod.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return container{}
}

// flagValue returns the value of the flag -name (or --name) in argv,
// written as two arguments or with "=", or "".
func flagValue(argv []string, name string) string {
	for i, a := range argv {
		for _, flag := range []string{"-" + name, "--" + name} {
			if a == flag && i+1 < len(argv) {
				return argv[i+1]
			}
			if v, ok := strings.CutPrefix(a, flag+"="); ok {
				return v
			}
		}
	}
	return ""
}

// TestKubernetes checks each variant's Deployment against the config its
// ConfigMap gives the binary: the config's path, the listeners behind the
// container ports, the probes and the scrape, the writable state_dir and
// the shutdown that must end within the grace period.
func TestKubernetes(t *testing.T) {
	for _, v := range []struct {
		name, dir string
		// sidecar is set when the proxy shares its pod with the backend
		// and reaches it over loopback.
		sidecar bool
	}{
		{name: "standalone", dir: "kubernetes"},
		{name: "sidecar", dir: "kubernetes/sidecar", sidecar: true},
	} {
		t.Run(v.name, func(t *testing.T) {
			objs := readManifests(t, v.dir)
			dep := find(t, objs, "Deployment", "")
			pod := dep.Spec.Template.Spec
			proxy := containerNamed(t, pod, proxyName)

			// The config: the ConfigMap volume mounted as the directory
			// of -config, holding a file the binary accepts.
			var mountPath, subPath, cmName string
			var items int
			for _, m := range proxy.VolumeMounts {
				for _, vol := range pod.Volumes {
					if vol.Name == m.Name && vol.ConfigMap != nil {
						mountPath, subPath, cmName, items = m.MountPath, m.SubPath, vol.ConfigMap.Name, len(vol.ConfigMap.Items)
					}
				}
			}
			if cmName == "" {
				t.Fatalf("container %s mounts no ConfigMap", proxyName)
			}
			raw, ok := find(t, objs, "ConfigMap", cmName).Data[path.Base(configPath)]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %s", cmName, path.Base(configPath))
			}
			cfg, err := config.Parse([]byte(raw))
			if err != nil {
				t.Fatalf("ConfigMap %s: %v", cmName, err)
			}

			// state_dir must be writable: the root filesystem and the
			// config directory are read-only.
			var writable []string
			for _, m := range proxy.VolumeMounts {
				for _, vol := range pod.Volumes {
					if vol.Name == m.Name && vol.EmptyDir != nil && !m.ReadOnly {
						writable = append(writable, m.MountPath)
					}
				}
			}

			adminHost, adminPort, err := net.SplitHostPort(cfg.AdminListen)
			if err != nil {
				t.Fatalf("admin_listen: %v", err)
			}
			annotations := dep.Spec.Template.Metadata.Annotations
			grace := 30 * time.Second // Kubernetes' default
			if s := pod.TerminationGracePeriodSeconds; s != nil {
				grace = time.Duration(*s) * time.Second
			}
			proxyStop := proxy.preStop() + cfg.Server.DrainDelay + cfg.Server.ShutdownTimeout
			checks := []check{
				eq("config/-config flag", flagValue(slices.Concat(proxy.Command, proxy.Args), "config"), configPath),
				eq("config/mountPath", mountPath, path.Dir(configPath)),
				// The kubelet never updates a subPath mount, and items
				// drop or rename keys: either would stop the reload.
				eq("config/subPath", subPath, ""),
				eq("config/items", strconv.Itoa(items), "0"),
				eq("state_dir/writable emptyDir mount", strings.Join(writable, ","), cfg.StateDir),
				eq("ports/http is listen", proxy.port("http"), port(t, cfg.Listen)),
				eq("ports/admin is admin_listen", proxy.port("admin"), adminPort),
				{name: "ports/admin_listen reachable by the kubelet", got: adminHost, want: `"", 0.0.0.0 or ::`, ok: adminHost == "" || adminHost == "0.0.0.0" || adminHost == "::"},
				eq("probes/liveness", proxy.LivenessProbe.String(), "/healthz on admin"),
				eq("probes/readiness", proxy.ReadinessProbe.String(), "/readyz on admin"),
				eq("scrape/prometheus.io/scrape", annotations["prometheus.io/scrape"], "true"),
				eq("scrape/prometheus.io/port", annotations["prometheus.io/port"], adminPort),
				eq("scrape/prometheus.io/path", annotations["prometheus.io/path"], "/metrics"),
				longer("termination/grace > preStop + drain_delay + shutdown_timeout", grace, proxyStop),
			}
			// Clients reach the listener, never the admin port.
			for _, svc := range objs {
				if svc.Kind != "Service" {
					continue
				}
				for _, p := range svc.Spec.Ports {
					checks = append(checks, eq(fmt.Sprintf("service %s/port %d/targetPort", svc.Metadata.Name, p.Port), p.TargetPort, "http"))
				}
			}

			up, err := url.Parse(cfg.Upstream.URL)
			if err != nil {
				t.Fatalf("upstream.url: %v", err)
			}
			if v.sidecar {
				backend := containerNamed(t, pod, "legacy-api")
				checks = append(checks,
					check{name: "upstream/host is loopback", got: up.Hostname(), want: "127.0.0.1, ::1 or localhost", ok: isLoopback(up.Hostname())},
					eq("upstream/port is legacy-api's", up.Port(), backend.port("backend")),
					// Both containers get SIGTERM at once: the backend
					// must serve until the proxy has drained.
					longer("termination/legacy-api preStop > proxy's preStop + drain_delay + shutdown_timeout", backend.preStop(), proxyStop),
					longer("termination/grace > legacy-api preStop", grace, backend.preStop()),
				)
			} else {
				checks = append(checks, check{name: "upstream/host is outside the pod", got: up.Hostname(), want: "not loopback", ok: !isLoopback(up.Hostname())})
			}
			run(t, checks)
		})
	}
}

// TestAdminRoutes checks that the admin listener serves the paths the
// deployments probe and scrape, read from the admin package's source.
func TestAdminRoutes(t *testing.T) {
	files, err := filepath.Glob("../admin/*.go")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	routeRE := regexp.MustCompile(`\.Handle(?:Func)?\("GET (/[^"]*)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routeRE.FindAllSubmatch(b, -1) {
			served[string(m[1])] = true
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		t.Run(p, func(t *testing.T) {
			if !served[p] {
				t.Errorf("got no route GET %s in ../admin; want one, for the probes and the scrape", p)
			}
		})
	}
}

// readDockerfile returns the Dockerfile's stages, each a map from an
// instruction to its arguments, continuation lines joined and comments
// dropped. COPY and ENV are keyed by destination and variable ("COPY
// /usr/local/bin/envelope-proxy", "ENV CGO_ENABLED") since a stage has
// several; a repeated key keeps its last value, as Docker does.
func readDockerfile(t *testing.T, file string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages []map[string]string
	var line string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") {
			continue
		}
		if l, ok := strings.CutSuffix(text, `\`); ok {
			line += l + " "
			continue
		}
		line += text
		cmd, args, _ := strings.Cut(line, " ")
		cmd, args, line = strings.ToUpper(cmd), strings.TrimSpace(args), ""
		switch cmd {
		case "":
			continue
		case "FROM":
			stages = append(stages, map[string]string{})
		case "COPY":
			f := strings.Fields(args)
			cmd += " " + f[len(f)-1]
		case "ENV":
			name, value, _ := strings.Cut(args, "=")
			cmd, args = cmd+" "+name, value
		case "ENTRYPOINT", "CMD":
			// The exec form, as the argv it gives.
			var argv []string
			if err := json.Unmarshal([]byte(args), &argv); err == nil {
				args = strings.Join(argv, " ")
			}
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", file, cmd)
		}
		stages[len(stages)-1][cmd] = args
	}
	return stages
}

// TestDockerfile checks that the image runs the binary where the manifests
// and the unit expect it, with the config at its documented path, as a user
// Kubernetes' runAsNonRoot accepts, exposing the default listeners.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("got %d stages; want a builder and a final stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	run(t, []check{
		eq("build/FROM has go.mod's Go", build["FROM"], "golang:"+string(goVersion[1])+" AS build"),
		// The final image has no libc.
		eq("build/CGO_ENABLED", build["ENV CGO_ENABLED"], "0"),
		eq("final/binary", final["COPY "+binaryPath], "--from=build /envelope-proxy "+binaryPath),
		eq("final/config", final["COPY "+configPath], "config.yaml "+configPath),
		eq("final/ENTRYPOINT", final["ENTRYPOINT"], binaryPath),
		eq("final/CMD", final["CMD"], "-config "+configPath),
		// Numeric, so that runAsNonRoot can verify it.
		eq("final/USER", final["USER"], "65532:65532"),
		eq("final/EXPOSE", final["EXPOSE"], port(t, config.DefaultListen)+" "+port(t, config.DefaultAdminListen)),
	})
}

// systemdDuration parses a systemd time span of one unit, such as 45 or
// 45s or 2min.
func systemdDuration(s string) (time.Duration, error) {
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	d, err := time.ParseDuration(strings.Replace(s, "min", "m", 1))
	if err != nil {
		return 0, fmt.Errorf("time span %q: %w", s, err)
	}
	return d, nil
}

// TestSystemdUnit checks the unit against the binary and the repository's
// config.yaml, which deploy/README.md installs beside it: the command line,
// the reload (the binary reloads on SIGHUP), the stop timeout, and the
// hardening the README promises.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("systemd/envelope-proxy.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("systemd/envelope-proxy.service: %v", err)
	}
	service := map[string][]string{}
	for _, o := range opts {
		if o.Section == "Service" {
			service[o.Name] = append(service[o.Name], o.Value)
		}
	}
	// get returns every value of name, one a line, or "<unset>": an unset
	// CapabilityBoundingSet grants every capability, an empty one none.
	get := func(name string) string {
		vs, ok := service[name]
		if !ok {
			return "<unset>"
		}
		return strings.Join(vs, "\n")
	}

	b, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatalf("../config.yaml: %v", err)
	}
	stop, err := systemdDuration(get("TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	checks := []check{
		eq("ExecStart", get("ExecStart"), binaryPath+" -config "+configPath),
		// A failed validation fails `systemctl reload` loudly; the SIGHUP
		// alone would be rejected only in the log.
		eq("ExecReload", get("ExecReload"), binaryPath+" validate -config "+configPath+"\n/bin/kill -HUP $MAINPID"),
		eq("KillSignal drains", get("KillSignal"), "SIGTERM"),
		longer("TimeoutStopSec > drain_delay + shutdown_timeout", stop, cfg.Server.DrainDelay+cfg.Server.ShutdownTimeout),
	}
	// With no capability the binary cannot bind a port below 1024.
	if get("CapabilityBoundingSet") == "" {
		for _, addr := range []string{cfg.Listen, cfg.AdminListen} {
			p, _ := strconv.Atoi(port(t, addr))
			checks = append(checks, check{name: "unprivileged port " + addr, got: strconv.Itoa(p), want: "1024 or more", ok: p >= 1024})
		}
	}
	for _, kv := range []struct{ name, want string }{
		// The config must be world-readable for the transient user.
		{"DynamicUser", "yes"},
		{"CapabilityBoundingSet", ""},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"SystemCallFilter", "@system-service"},
		{"MemoryDenyWriteExecute", "yes"},
		{"ReadOnlyPaths", path.Dir(configPath)},
		// The only writable directory, /var/lib/envelope-proxy: the
		// state_dir the README tells the config to set.
		{"StateDirectory", "envelope-proxy"},
	} {
		checks = append(checks, eq(kv.name, get(kv.name), kv.want))
	}
	run(t, checks)
}
