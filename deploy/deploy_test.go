// Package deploy_test checks that the deployment files agree with each other
// and with the binary: the ports, paths, probes, timeouts and config that the
// Dockerfile, the Kubernetes manifests and the systemd unit each repeat.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"go.yaml.in/yaml/v3"
)

// The paths every deployment shares with the binary's documentation.
const (
	configDir   = "/etc/envelope-proxy"
	configPath  = configDir + "/config.yaml"
	binaryPath  = "/usr/local/bin/envelope-proxy"
	proxyName   = "envelope-proxy"
	distroless  = "gcr.io/distroless/static-debian12:nonroot"
	nonrootUser = "65532:65532"
)

// check is one row of a table: got is what a file says, want what it must
// say, and holds whether the relation between them holds (equality unless
// the row was built by more).
type check struct {
	name      string
	got, want string
	holds     bool
}

// eq is a check that got equals want.
func eq(name, got, want string) check {
	return check{name: name, got: got, want: want, holds: got == want}
}

// more is a check that got is strictly greater than want.
func more[T int | time.Duration](name string, got, want T) check {
	return check{name: name, got: fmt.Sprint(got), want: fmt.Sprint("more than ", want), holds: got > want}
}

// run runs each check as a subtest.
func run(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !c.holds {
				t.Errorf("got %q; want %q", c.got, c.want)
			}
		})
	}
}

// object is one Kubernetes object, decoded only as far as the checks need;
// spec is decoded later, by kind.
type object struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	Spec       yaml.Node         `yaml:"spec"`
	file       string
}

// objectMeta is an object's metadata.
type objectMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// labelSelector is a selector by labels alone.
type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// deploymentSpec is a Deployment's spec.
type deploymentSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     podSpec    `yaml:"spec"`
	} `yaml:"template"`
}

// podSpec is a pod template's spec.
type podSpec struct {
	TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	Containers                    []container     `yaml:"containers"`
	Volumes                       []volume        `yaml:"volumes"`
	AutomountServiceAccountToken  *bool           `yaml:"automountServiceAccountToken"`
}

// securityContext holds the fields of a pod's or a container's security
// context that the checks read.
type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

// container is one container of a pod.
type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// probe is a liveness or readiness probe; only httpGet is read, and its
// port as text, so a named port stays a name.
type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// volume is a pod volume, of which ConfigMap and emptyDir volumes are read.
type volume struct {
	Name     string `yaml:"name"`
	EmptyDir *struct {
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	ConfigMap *struct {
		Name  string `yaml:"name"`
		Items []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"configMap"`
}

// serviceSpec is a Service's spec.
type serviceSpec struct {
	Type     string            `yaml:"type"`
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

// pdbSpec is a PodDisruptionBudget's spec.
type pdbSpec struct {
	MinAvailable   string        `yaml:"minAvailable"`
	MaxUnavailable string        `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

// hpaSpec is a HorizontalPodAutoscaler's spec.
type hpaSpec struct {
	ScaleTargetRef struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Name       string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicas int `yaml:"minReplicas"`
	MaxReplicas int `yaml:"maxReplicas"`
	Metrics     []struct {
		Type     string `yaml:"type"`
		Resource struct {
			Name   string `yaml:"name"`
			Target struct {
				Type               string `yaml:"type"`
				AverageUtilization int    `yaml:"averageUtilization"`
			} `yaml:"target"`
		} `yaml:"resource"`
	} `yaml:"metrics"`
}

// kustomization is a kustomization.yaml.
type kustomization struct {
	Resources []string `yaml:"resources"`
}

// readObjects decodes every document of every YAML file directly in dir
// (not its subdirectories), kustomization.yaml aside.
func readObjects(t *testing.T, dir string) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs = append(objs, decodeFile(t, f)...)
	}
	return objs
}

// decodeFile decodes every non-empty document of a YAML file and requires
// each to name its apiVersion, kind and (but for a Kustomization)
// metadata.name.
func decodeFile(t *testing.T, file string) []object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var objs []object
	for i := 0; ; i++ {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s, document %d: %v", file, i, err)
		}
		if o.Kind == "" && o.APIVersion == "" && o.Metadata.Name == "" {
			continue // an empty document, between two "---"
		}
		// A Kustomization is the only kind without a name.
		if o.Kind == "" || o.APIVersion == "" || (o.Metadata.Name == "" && o.Kind != "Kustomization") {
			t.Fatalf("%s, document %d: apiVersion %q, kind %q, name %q: all three are required", file, i, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		o.file = file
		objs = append(objs, o)
	}
	return objs
}

// decodeSpec decodes o's spec into out.
func decodeSpec(t *testing.T, o object, out any) {
	t.Helper()
	if err := o.Spec.Decode(out); err != nil {
		t.Fatalf("%s: %s %s: spec: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
}

// only returns the single object of kind in objs, failing unless there is
// exactly one.
func only(t *testing.T, objs []object, kind string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d objects of kind %s; want 1", len(found), kind)
	}
	return found[0]
}

// ofKind returns the objects of kind in objs.
func ofKind(objs []object, kind string) []object {
	var found []object
	for _, o := range objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	return found
}

// containerNamed returns the container called name, or nil.
func containerNamed(cs []container, name string) *container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// portNamed returns the container port called name as a string, or "".
func (c *container) portNamed(name string) string {
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(p.ContainerPort)
		}
	}
	return ""
}

// preStopSleep returns the seconds of the container's native preStop sleep,
// or 0.
func (c *container) preStopSleep() int {
	if s := c.Lifecycle.PreStop.Sleep; s != nil {
		return s.Seconds
	}
	return 0
}

// flagValue returns the value of the -config (or --config) flag in argv,
// written as two arguments or with "=", or "".
func flagValue(argv []string, name string) string {
	for i, a := range argv {
		for _, dash := range []string{"-", "--"} {
			if a == dash+name && i+1 < len(argv) {
				return argv[i+1]
			}
			if v, ok := strings.CutPrefix(a, dash+name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// probeOf describes a probe as "path on port", or "none".
func probeOf(p *probe) string {
	if p == nil || p.HTTPGet == nil {
		return "none"
	}
	return p.HTTPGet.Path + " on " + p.HTTPGet.Port
}

// boolOf prints a *bool, "unset" when nil.
func boolOf(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}

// firstSet returns the first non-nil of bs.
func firstSet(bs ...*bool) *bool {
	for _, b := range bs {
		if b != nil {
			return b
		}
	}
	return nil
}

// labels prints a label map in a stable order.
func labels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// selects reports whether a non-empty selector matches the labels.
func selects(selector, lbls map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if lbls[k] != v {
			return false
		}
	}
	return true
}

// port returns the port of a host:port address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

// host returns the host of a host:port address.
func host(t *testing.T, addr string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return h
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// variant is a directory of Kubernetes manifests deploying the proxy.
type variant struct {
	name string
	dir  string
	// sidecar is set when the proxy shares its pod with the backend.
	sidecar bool
}

var variants = []variant{
	{name: "standalone", dir: "kubernetes"},
	{name: "sidecar", dir: "kubernetes/sidecar", sidecar: true},
}

// TestManifestsParse decodes every YAML document under kubernetes/, in every
// subdirectory, so that no file escapes the checks by being unreadable, and
// requires every directory of manifests to be a checked variant.
func TestManifestsParse(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir("kubernetes", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); d.IsDir() || (ext != ".yaml" && ext != ".yml") {
			return nil
		}
		decodeFile(t, p)
		dirs[filepath.ToSlash(filepath.Dir(p))] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, v := range variants {
		checked = append(checked, v.dir)
	}
	run(t, []check{eq("directories", strings.Join(slices.Sorted(maps.Keys(dirs)), " "), strings.Join(slices.Sorted(slices.Values(checked)), " "))})
}

// TestKubernetes checks each variant's manifests against each other and
// against the proxy's config.
func TestKubernetes(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { testVariant(t, v) })
	}
}

// testVariant runs the checks of one directory of manifests.
func testVariant(t *testing.T, v variant) {
	objs := readObjects(t, v.dir)
	var checks []check

	// The kustomization lists exactly the manifests of its directory.
	var k kustomization
	kb, err := os.ReadFile(filepath.Join(v.dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(kb, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(v.dir, "*.yaml"))
	var manifests []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			manifests = append(manifests, b)
		}
	}
	sort.Strings(manifests)
	checks = append(checks, eq("kustomization/resources", strings.Join(slices.Sorted(slices.Values(k.Resources)), " "), strings.Join(manifests, " ")))

	// The Deployment and its proxy container.
	depObj := only(t, objs, "Deployment")
	var dep deploymentSpec
	decodeSpec(t, depObj, &dep)
	pod := dep.Template.Spec
	proxy := containerNamed(pod.Containers, proxyName)
	if proxy == nil {
		t.Fatalf("Deployment %s has no container named %s", depObj.Metadata.Name, proxyName)
	}
	podLabels := dep.Template.Metadata.Labels
	checks = append(checks,
		eq("deployment/apiVersion", depObj.APIVersion, "apps/v1"),
		eq("deployment/selector selects the pod", fmt.Sprint(selects(dep.Selector.MatchLabels, podLabels)), "true"),
		eq("deployment/app.kubernetes.io/name", podLabels["app.kubernetes.io/name"], depObj.Metadata.Name),
	)

	// The ConfigMap mounted as the config directory, and its config.
	var mountPath, subPath, volumeName string
	mounts := 0
	for _, m := range proxy.VolumeMounts {
		if m.MountPath == configDir || strings.HasPrefix(m.MountPath, configDir+"/") {
			mountPath, subPath, volumeName = m.MountPath, m.SubPath, m.Name
			mounts++
		}
	}
	if mounts != 1 {
		t.Fatalf("got %d volume mounts at or under %s; want 1", mounts, configDir)
	}
	var cmName string
	var items int
	for _, vol := range pod.Volumes {
		if vol.Name == volumeName && vol.ConfigMap != nil {
			cmName, items = vol.ConfigMap.Name, len(vol.ConfigMap.Items)
		}
	}
	var cm *object
	for _, o := range ofKind(objs, "ConfigMap") {
		if o.Metadata.Name == cmName {
			cm = &o
		}
	}
	if cm == nil {
		t.Fatalf("volume %q: no ConfigMap %q among the manifests", volumeName, cmName)
	}
	raw, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cmName, path.Base(configPath))
	}
	cfg, err := config.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("ConfigMap %s, %s: config.Parse: %v", cmName, path.Base(configPath), err)
	}
	// The dashboard's evidence needs a writable state_dir: the root
	// filesystem and the config directory are read-only.
	stateVolume := ""
	for _, m := range proxy.VolumeMounts {
		if m.MountPath == cfg.StateDir && !m.ReadOnly {
			stateVolume = m.Name
		}
	}
	stateWritable := false
	for _, vol := range pod.Volumes {
		if vol.Name == stateVolume && vol.EmptyDir != nil {
			stateWritable = true
		}
	}
	checks = append(checks,
		eq("state_dir is a writable emptyDir mount", fmt.Sprint(stateWritable), "true"),
		eq("config volume/mountPath", mountPath, configDir),
		eq("config volume/subPath", subPath, ""),
		// items would drop any key not listed, and rename the rest.
		eq("config volume/items", strconv.Itoa(items), "0"),
		eq("config flag", flagValue(append(slices.Clone(proxy.Command), proxy.Args...), "config"), configPath),
	)

	// Ports: the config's listeners are the container's named ports.
	adminPort := proxy.portNamed("admin")
	adminHost := host(t, cfg.AdminListen)
	checks = append(checks,
		eq("ports/http = listen", proxy.portNamed("http"), port(t, cfg.Listen)),
		eq("ports/admin = admin_listen", adminPort, port(t, cfg.AdminListen)),
		check{
			name:  "admin_listen host reachable by the kubelet",
			got:   adminHost,
			want:  `"", 0.0.0.0 or ::`,
			holds: adminHost == "" || adminHost == "0.0.0.0" || adminHost == "::",
		},
		eq("probes/liveness", probeOf(proxy.LivenessProbe), "/healthz on admin"),
		eq("probes/readiness", probeOf(proxy.ReadinessProbe), "/readyz on admin"),
		eq("annotations/prometheus.io/scrape", dep.Template.Metadata.Annotations["prometheus.io/scrape"], "true"),
		eq("annotations/prometheus.io/port", dep.Template.Metadata.Annotations["prometheus.io/port"], adminPort),
	)

	// Termination: the preStop sleep, then drain_delay, then
	// shutdown_timeout, all within the grace period.
	grace := 30 // Kubernetes' default
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	proxyStop := time.Duration(proxy.preStopSleep())*time.Second + cfg.Server.DrainDelay + cfg.Server.ShutdownTimeout
	checks = append(checks,
		more("termination/preStop sleep seconds", proxy.preStopSleep(), 0),
		more("termination/drain_delay", cfg.Server.DrainDelay, 0),
		more("termination/grace > preStop + drain_delay + shutdown_timeout", time.Duration(grace)*time.Second, proxyStop),
	)

	// Security.
	sc, psc := proxy.SecurityContext, pod.SecurityContext
	seccomp := sc.SeccompProfile.Type
	if seccomp == "" {
		seccomp = psc.SeccompProfile.Type
	}
	checks = append(checks,
		eq("security/runAsNonRoot", boolOf(firstSet(sc.RunAsNonRoot, psc.RunAsNonRoot)), "true"),
		eq("security/readOnlyRootFilesystem", boolOf(sc.ReadOnlyRootFilesystem), "true"),
		eq("security/allowPrivilegeEscalation", boolOf(sc.AllowPrivilegeEscalation), "false"),
		eq("security/capabilities.drop", strings.Join(sc.Capabilities.Drop, ","), "ALL"),
		eq("security/seccompProfile", seccomp, "RuntimeDefault"),
		eq("security/automountServiceAccountToken", boolOf(pod.AutomountServiceAccountToken), "false"),
	)
	for _, kind := range []string{"requests", "limits"} {
		m := proxy.Resources.Requests
		if kind == "limits" {
			m = proxy.Resources.Limits
		}
		for _, res := range []string{"cpu", "memory"} {
			checks = append(checks, check{name: "resources/" + kind + "." + res, got: m[res], want: "set", holds: m[res] != ""})
		}
	}

	// Services reach the pod only on the proxy's http port.
	services := ofKind(objs, "Service")
	checks = append(checks, more("services", len(services), 0))
	for _, o := range services {
		var s serviceSpec
		decodeSpec(t, o, &s)
		checks = append(checks,
			eq("service "+o.Metadata.Name+"/type", s.Type, "ClusterIP"),
			eq("service "+o.Metadata.Name+"/selector "+labels(s.Selector), fmt.Sprint(selects(s.Selector, podLabels)), "true"),
		)
		for _, p := range s.Ports {
			checks = append(checks, eq("service "+o.Metadata.Name+"/port "+strconv.Itoa(p.Port)+"/targetPort", p.TargetPort, "http"))
		}
	}

	// The upstream: the backend container over loopback in a sidecar pod,
	// another host otherwise.
	upstream, err := urlHostPort(cfg.Upstream.URL)
	if err != nil {
		t.Fatalf("upstream.url: %v", err)
	}
	upHost, upPort, _ := net.SplitHostPort(upstream)
	if v.sidecar {
		backend := containerNamed(pod.Containers, "legacy-api")
		if backend == nil {
			t.Fatalf("sidecar Deployment %s has no container named legacy-api", depObj.Metadata.Name)
		}
		var backendPorts []string
		for _, p := range backend.Ports {
			backendPorts = append(backendPorts, strconv.Itoa(p.ContainerPort))
		}
		checks = append(checks,
			check{name: "upstream/host is loopback", got: upHost, want: "127.0.0.1, ::1 or localhost", holds: isLoopback(upHost)},
			eq("upstream/port = legacy-api's port", upPort, strings.Join(backendPorts, ",")),
			more("termination/legacy-api preStop sleep > proxy's preStop + drain_delay + shutdown_timeout", time.Duration(backend.preStopSleep())*time.Second, proxyStop),
			more("termination/grace > legacy-api preStop sleep", grace, backend.preStopSleep()),
		)
	} else {
		checks = append(checks,
			check{name: "upstream/host is not loopback", got: upHost, want: "a host outside the pod", holds: !isLoopback(upHost)},
			eq("containers", strconv.Itoa(len(pod.Containers)), "1"),
		)
	}

	// PodDisruptionBudgets and HorizontalPodAutoscalers, where present,
	// select or target the Deployment.
	hpas := ofKind(objs, "HorizontalPodAutoscaler")
	minReplicas := 0
	if dep.Replicas != nil {
		minReplicas = *dep.Replicas
	}
	for _, o := range hpas {
		var h hpaSpec
		decodeSpec(t, o, &h)
		ref := h.ScaleTargetRef
		var cpu []string
		for _, m := range h.Metrics {
			if m.Type == "Resource" && m.Resource.Name == "cpu" && m.Resource.Target.Type == "Utilization" {
				cpu = append(cpu, strconv.Itoa(m.Resource.Target.AverageUtilization))
			}
		}
		minReplicas = h.MinReplicas
		checks = append(checks,
			eq("hpa/apiVersion", o.APIVersion, "autoscaling/v2"),
			eq("hpa/scaleTargetRef", ref.APIVersion+" "+ref.Kind+" "+ref.Name, "apps/v1 Deployment "+depObj.Metadata.Name),
			eq("hpa/minReplicas", strconv.Itoa(h.MinReplicas), "3"),
			eq("hpa/maxReplicas", strconv.Itoa(h.MaxReplicas), "20"),
			eq("hpa/cpu utilization", strings.Join(cpu, ","), "70"),
			// kubectl apply would reset a fixed count the HPA has changed.
			eq("deployment/replicas unset under an HPA", fmt.Sprint(dep.Replicas != nil), "false"),
		)
	}
	if len(hpas) == 0 {
		checks = append(checks, more("deployment/replicas", minReplicas, 1))
	}
	for _, o := range ofKind(objs, "PodDisruptionBudget") {
		var p pdbSpec
		decodeSpec(t, o, &p)
		checks = append(checks,
			eq("pdb/apiVersion", o.APIVersion, "policy/v1"),
			eq("pdb/selector", labels(p.Selector.MatchLabels), labels(dep.Selector.MatchLabels)),
			check{name: "pdb/budget", got: "minAvailable " + p.MinAvailable + ", maxUnavailable " + p.MaxUnavailable, want: "exactly one set", holds: (p.MinAvailable == "") != (p.MaxUnavailable == "")},
		)
		if n, err := strconv.Atoi(p.MinAvailable); err == nil {
			checks = append(checks, more("pdb/minReplicas > minAvailable", minReplicas, n))
		}
	}
	run(t, checks)
}

// urlHostPort returns the host:port an http(s) URL connects to.
func urlHostPort(raw string) (string, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", fmt.Errorf("%q has no scheme", raw)
	}
	hostport, _, _ := strings.Cut(rest, "/")
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport, nil
	}
	if scheme == "https" {
		return net.JoinHostPort(hostport, "443"), nil
	}
	return net.JoinHostPort(hostport, "80"), nil
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	from, name string
	ins        []instruction
}

// parseDockerfile splits a Dockerfile into stages. Comments (parser
// directives included) and blank lines are dropped.
func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", file, cmd)
		}
		last := &stages[len(stages)-1]
		last.ins = append(last.ins, instruction{cmd, args})
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// all returns the arguments of every instruction cmd in s.
func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// index returns the position of the first instruction cmd in s whose
// arguments contain sub, or -1.
func (s stage) index(cmd, sub string) int {
	for i, in := range s.ins {
		if in.cmd == cmd && strings.Contains(in.args, sub) {
			return i
		}
	}
	return -1
}

// execForm decodes an exec-form (JSON array) ENTRYPOINT or CMD and joins it
// with spaces; a shell form comes back marked as such.
func execForm(args string) string {
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		return "shell form: " + args
	}
	return strings.Join(argv, " ")
}

// last returns the last element of s, or "".
func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// goMinor returns the go directive of the module's go.mod as major.minor.
func goMinor(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// TestDockerfile checks the image: built with the module's Go, static,
// distroless and non-root, with the config where the manifests and the
// command line expect it.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("got %d stages; want a builder and a final stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	buildRun := build.index("RUN", "go build")
	if buildRun < 0 {
		t.Fatal("the first stage has no RUN go build")
	}
	// CGO_ENABLED=0 set by an ENV before the build, or on its command line.
	cgo := "unset"
	for i, in := range build.ins[:buildRun+1] {
		if (in.cmd == "ENV" || i == buildRun) && strings.Contains(in.args, "CGO_ENABLED=0") {
			cgo = "CGO_ENABLED=0"
		}
	}
	builderImage, _, _ := strings.Cut(build.from, "-")
	var copiedBinary, copiedConfig string
	for _, c := range final.all("COPY") {
		f := strings.Fields(c)
		switch {
		case len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[2] == binaryPath:
			copiedBinary = strings.TrimPrefix(f[0], "--from=")
		case len(f) == 2 && f[0] == "config.yaml":
			copiedConfig = f[1]
		}
	}
	wantExpose := port(t, config.DefaultListen) + " " + port(t, config.DefaultAdminListen)
	run(t, []check{
		eq("builder/image", builderImage, "golang:"+goMinor(t)),
		eq("builder/CGO_ENABLED", cgo, "CGO_ENABLED=0"),
		check{name: "builder/go.mod copied before the source", got: fmt.Sprint(build.index("COPY", "go.mod"), " < ", build.index("COPY", ". .")), want: "0 <= index < index of COPY . .", holds: build.index("COPY", "go.mod") >= 0 && build.index("COPY", "go.mod") < build.index("COPY", ". .")},
		check{name: "builder/go mod download before the source", got: fmt.Sprint(build.index("RUN", "go mod download"), " < ", build.index("COPY", ". .")), want: "0 <= index < index of COPY . .", holds: build.index("RUN", "go mod download") >= 0 && build.index("RUN", "go mod download") < build.index("COPY", ". .")},
		eq("builder/-trimpath", fmt.Sprint(strings.Contains(build.ins[buildRun].args, "-trimpath")), "true"),
		eq("builder/-s -w", fmt.Sprint(strings.Contains(build.ins[buildRun].args, "-s -w")), "true"),
		eq("final/image", final.from, distroless),
		eq("final/binary copied from the builder", copiedBinary, build.name),
		eq("final/config", copiedConfig, configPath),
		eq("final/USER", last(final.all("USER")), nonrootUser),
		eq("final/EXPOSE", last(final.all("EXPOSE")), wantExpose),
		eq("final/ENTRYPOINT", execForm(last(final.all("ENTRYPOINT"))), binaryPath),
		eq("final/CMD", execForm(last(final.all("CMD"))), "-config "+configPath),
	})
}

// unit is a parsed systemd unit: section, then key, then every value in
// order (keys such as ExecReload may repeat).
type unit map[string]map[string][]string

// parseUnit reads a systemd unit file. Continuation lines are not used in
// ours and not supported.
func parseUnit(t *testing.T, file string) unit {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: %q is not a key=value line in a section", file, n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

// get returns the last value of section.key, or "<unset>".
func (u unit) get(section, key string) string {
	vs, ok := u[section][key]
	if !ok {
		return "<unset>"
	}
	return last(vs)
}

// systemdDuration parses a systemd time span such as 45, 45s, 1min 30s.
func systemdDuration(s string) (time.Duration, error) {
	s = strings.ReplaceAll(s, " ", "")
	if _, err := strconv.Atoi(s); err == nil {
		s += "s"
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "min", "m"), "sec", "s")
	return time.ParseDuration(s)
}

// TestSystemdUnit checks the unit's command line, reload and stop against
// the binary, and its hardening.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "systemd/envelope-proxy.service")
	stop, err := systemdDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	def := config.Default()
	checks := []check{
		eq("Type", u.get("Service", "Type"), "simple"),
		eq("ExecStart", u.get("Service", "ExecStart"), binaryPath+" -config "+configPath),
		eq("ExecReload", u.get("Service", "ExecReload"), "/bin/kill -HUP $MAINPID"),
		eq("KillSignal", u.get("Service", "KillSignal"), "SIGTERM"),
		more("TimeoutStopSec > drain_delay + shutdown_timeout", stop, def.Server.DrainDelay+def.Server.ShutdownTimeout),
		eq("Install/WantedBy", u.get("Install", "WantedBy"), "multi-user.target"),
	}
	// An ExecReload line before the HUP may validate the file; none may
	// restart or stop the service.
	for _, r := range u["Service"]["ExecReload"] {
		checks = append(checks, check{name: "ExecReload " + r, got: r, want: "validate or kill -HUP", holds: strings.HasSuffix(r, " validate -config "+configPath) || r == "/bin/kill -HUP $MAINPID"})
	}
	for _, kv := range [][2]string{
		{"Restart", "on-failure"},
		{"DynamicUser", "yes"},
		{"LimitNOFILE", "65536"},
		{"CapabilityBoundingSet", ""},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"ProtectClock", "yes"},
		{"ProtectHostname", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "yes"},
		{"RestrictRealtime", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"SystemCallArchitectures", "native"},
		{"SystemCallFilter", "@system-service"},
		{"ReadOnlyPaths", configDir},
	} {
		checks = append(checks, eq(kv[0], u.get("Service", kv[0]), kv[1]))
	}
	run(t, checks)
}
