// Package deploy_test checks that the deployment files agree with the
// binary: the ports, paths, probes, timeouts and config that the Kubernetes
// manifests, the Dockerfile and the systemd unit repeat from it. Anything
// that only one file says is left to that file.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
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

// secretsDir holds the example of the Secret that both variants read:
// applied by neither, it shows the name and keys to create.
const secretsDir = "kubernetes"

// envRefRE finds the ${NAME} references that config.Expand replaces with
// the environment variable NAME.
var envRefRE = regexp.MustCompile(`\$\{([^}]*)\}`)

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
	// Data is a ConfigMap's data, or a Secret's base64-encoded; StringData
	// is a Secret's in plain text.
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
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
	Env            []envVar `yaml:"env"`
	LivenessProbe  probe    `yaml:"livenessProbe"`
	ReadinessProbe probe    `yaml:"readinessProbe"`
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

// envVar is one variable of a container's environment: a literal value, or
// a reference to a Secret's key.
type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *secretKeyRef `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

// secretKeyRef names a key of a Secret; Optional lets the container start
// without it.
type secretKeyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

// secretRef returns the Secret key that sets v, or nil for a literal.
func (v envVar) secretRef() *secretKeyRef {
	if v.ValueFrom == nil {
		return nil
	}
	return v.ValueFrom.SecretKeyRef
}

// String describes where the variable's value comes from.
func (v envVar) String() string {
	switch ref := v.secretRef(); {
	case ref != nil:
		s := "Secret " + ref.Name + " key " + ref.Key
		if ref.Optional {
			s += " (optional)"
		}
		return s
	case v.Value != nil:
		return "a literal value"
	}
	return "<unset>"
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

// env returns the container's variable called name, or a zero one.
func (c container) env(name string) envVar {
	for _, v := range c.Env {
		if v.Name == name {
			return v
		}
	}
	return envVar{}
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
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "kustomization.yaml" })
	return readManifestFiles(t, files...)
}

// readManifestFiles decodes every document of files.
func readManifestFiles(t *testing.T, files ...string) []manifest {
	t.Helper()
	var objs []manifest
	for _, file := range files {
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

// secretValue returns key of Secret m in plain text, and whether it is
// there.
func secretValue(t *testing.T, m manifest, key string) (string, bool) {
	t.Helper()
	if v, ok := m.StringData[key]; ok {
		return v, true
	}
	v, ok := m.Data[key]
	if !ok {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("Secret %s key %s: %v", m.Metadata.Name, key, err)
	}
	return string(b), true
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
			// state_url is only a reference to environment variables,
			// which the Deployment sets from the Secret that
			// secret.example.yaml shows (created out of band, never
			// applied from here): the database URL and its password stay
			// out of the ConfigMap. The config is parsed with the
			// example's values, as a pod would see them.
			var doc struct {
				StateURL string `yaml:"state_url"`
			}
			if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
				t.Fatalf("ConfigMap %s: %v", cmName, err)
			}
			refs := envRefRE.FindAllStringSubmatch(doc.StateURL, -1)
			stateChecks := []check{
				{name: "state_url/only a ${NAME} reference", got: doc.StateURL, want: "${NAME}, the URL itself in a Secret", ok: len(refs) == 1 && refs[0][0] == doc.StateURL},
			}
			secrets := readManifests(t, secretsDir)
			var passwords []string
			for _, ref := range refs {
				name := ref[1]
				v := proxy.env(name)
				sk := v.secretRef()
				stateChecks = append(stateChecks, check{name: "state_url/" + name + " from a required Secret", got: v.String(), want: "a Secret's key, not optional", ok: sk != nil && !sk.Optional})
				if sk == nil {
					continue
				}
				val, ok := secretValue(t, find(t, secrets, "Secret", sk.Name), sk.Key)
				if !ok {
					t.Fatalf("Secret %s in %s has no key %s, which %s reads", sk.Name, secretsDir, sk.Key, name)
				}
				u, err := url.Parse(val)
				isPostgres := err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.Host != ""
				got := val
				if err == nil {
					got = u.Redacted()
					if pw, ok := u.User.Password(); ok {
						passwords = append(passwords, pw)
					}
				}
				stateChecks = append(stateChecks, check{name: "state_url/" + name + " example is a PostgreSQL URL", got: got, want: "postgres://user@host:port/db?...", ok: isPostgres})
				t.Setenv(name, val)
			}
			// The driver's PGPASSWORD, when set, comes from a Secret too.
			if v := proxy.env("PGPASSWORD"); v.Name != "" {
				sk := v.secretRef()
				stateChecks = append(stateChecks, check{name: "state_url/PGPASSWORD from a Secret", got: v.String(), want: "a Secret's key", ok: sk != nil})
				if sk != nil {
					pw, ok := secretValue(t, find(t, secrets, "Secret", sk.Name), sk.Key)
					stateChecks = append(stateChecks, check{name: "state_url/PGPASSWORD's key in the example Secret", got: strconv.FormatBool(ok), want: "true", ok: ok})
					if ok {
						passwords = append(passwords, pw)
					}
				}
			}
			for _, cm := range objs {
				if cm.Kind != "ConfigMap" {
					continue
				}
				for key, text := range cm.Data {
					for _, pw := range passwords {
						stateChecks = append(stateChecks, check{name: "state_url/password not in ConfigMap " + cm.Metadata.Name + " " + key, got: "contains it", want: "no password", ok: pw == "" || !strings.Contains(text, pw)})
					}
				}
			}
			// Before the parse, which fails on a variable left unset.
			run(t, stateChecks)

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
				// The fallback, when state_url is empty.
				eq("state_dir/writable emptyDir mount", strings.Join(writable, ","), cfg.StateDir),
				// Each pod by its own name: one name shared by every pod
				// would have them write each other's rows.
				eq("replica/empty, the pod's name", cfg.Replica, ""),
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

// TestKustomization checks what `kubectl apply -k` applies in each variant:
// every file it lists is there, every manifest beside it is listed but the
// examples (*.example.yaml), and no Secret is among them, so credentials
// are never applied from (or committed to) the repository.
func TestKustomization(t *testing.T) {
	for _, dir := range []string{"kubernetes", "kubernetes/sidecar"} {
		t.Run(dir, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var k struct {
				Resources       []string `yaml:"resources"`
				SecretGenerator []any    `yaml:"secretGenerator"`
			}
			if err := yaml.Unmarshal(b, &k); err != nil {
				t.Fatalf("%s/kustomization.yaml: %v", dir, err)
			}
			files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, f := range files {
				if base := filepath.Base(f); base != "kustomization.yaml" && !strings.HasSuffix(base, ".example.yaml") {
					want = append(want, base)
				}
			}
			got := slices.Sorted(slices.Values(k.Resources))
			checks := []check{
				eq("resources are the manifests but the examples", strings.Join(got, " "), strings.Join(want, " ")),
				eq("no secretGenerator", strconv.Itoa(len(k.SecretGenerator)), "0"),
			}
			var listed []string
			for _, r := range k.Resources {
				listed = append(listed, filepath.Join(dir, r))
			}
			for _, o := range readManifestFiles(t, listed...) {
				if o.Kind == "Secret" {
					checks = append(checks, check{name: "no Secret applied", got: "Secret " + o.Metadata.Name, want: "none: an *.example.yaml, created out of band"})
				}
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
