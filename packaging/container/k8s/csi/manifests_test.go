package csi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/secretsfs/secretsfs/mount/mapping"
)

// The driver's name (the CSI contract): what the CSIDriver object is
// called, what GetPluginInfo answers, what pods name in their csi volumes.
const driverName = "csi.secretsfs.io"

// kubeletDir is kubelet's root directory on the node (its default).
const kubeletDir = "/var/lib/kubelet"

// volumeAttributes are the keys a pod may give in a csi volume's
// volumeAttributes (the CSI contract); keys starting with
// "csi.storage.k8s.io/" are kubelet's.
var volumeAttributes = []string{"secrets", "prefix", "tags", "mapping", "region", "roleArn", "mode", "fileMode", "dirMode", "refreshInterval", "maxStale"}

// newObject returns an empty object of the API type that apiVersion and
// kind name: the only kinds these manifests may hold.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Pod":
		return &corev1.Pod{}, nil
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "storage.k8s.io/v1 CSIDriver":
		return &storagev1.CSIDriver{}, nil
	}
	return nil, fmt.Errorf("apiVersion %q, kind %q: not a kind these manifests should hold", apiVersion, kind)
}

// decode splits YAML into its documents and decodes each strictly into
// its Kubernetes API type: a field the type lacks, a value of the wrong
// type or a key given twice is an error. Documents that hold only comments
// are skipped.
func decode(name string, data []byte) ([]any, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []any
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		if m == nil {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		obj, err := newObject(tm.APIVersion, tm.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, n, err)
		}
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s): %w", name, n, tm.Kind, err)
		}
		out = append(out, obj)
	}
}

// load decodes a manifest file (see decode).
func load(t *testing.T, name string) []any {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(name, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no objects", name)
	}
	return objs
}

// one returns the single object of type T among objs.
func one[T any](t *testing.T, objs []any) *T {
	t.Helper()
	var found []*T
	for _, o := range objs {
		if v, ok := o.(*T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of type %T, want 1", len(found), new(T))
	}
	return found[0]
}

// podTemplate returns the pod metadata and spec an object runs, if any.
func podTemplate(obj any) (*metav1.ObjectMeta, *corev1.PodSpec, bool) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, &o.Spec, true
	case *appsv1.DaemonSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
	case *appsv1.Deployment:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
	}
	return nil, nil, false
}

// manifestFiles are the YAML files of this directory and of example/.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, glob := range []string{"*.yaml", "example/*.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("only %v", files)
	}
	return files
}

// restrictedViolations evaluates a pod against the restricted Pod Security
// standard at its latest version, with Pod Security admission's own checks,
// and returns why it is refused (none: it passes).
func restrictedViolations(t *testing.T, meta *metav1.ObjectMeta, spec *corev1.PodSpec) []string {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := policy.AggregateCheckResults(eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, meta, spec))
	if res.Allowed {
		return nil
	}
	return res.ForbiddenReasons
}

// flagValue returns the value of the flag name in args, given as
// "--name=value" or "--name value".
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// hostPathOf resolves a path inside a container to the node's path through
// the container's hostPath volume mounts, with the mount it goes through.
func hostPathOf(spec *corev1.PodSpec, c *corev1.Container, p string) (string, corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				return path.Join(v.HostPath.Path, rel), m, true
			}
		}
	}
	return "", corev1.VolumeMount{}, false
}

// volume returns the pod's volume of that name.
func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// pinnedImage reports whether an image names a digest, or a tag that is a
// version: never "latest", never a moving name such as "bookworm-slim".
func pinnedImage(image string) bool {
	if regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(image) {
		return true
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+.][0-9A-Za-z.-]+)?$`).MatchString(tag)
}

// TestIssue14_01_ManifestsDecodeStrictly: every manifest of the driver and
// the example, and the node-wide ones beside them, decodes into the
// Kubernetes API types with no unknown field; the check itself refuses a
// misspelt field and a kind that does not belong.
func TestIssue14_01_ManifestsDecodeStrictly(t *testing.T) {
	files := manifestFiles(t)
	nodeWide, err := filepath.Glob(filepath.Join("..", "*.yaml"))
	if err != nil || len(nodeWide) == 0 {
		t.Fatalf("the node-wide manifests in ..: %v, %v", nodeWide, err)
	}
	for _, f := range append(files, nodeWide...) {
		for _, obj := range load(t, f) {
			if o, ok := obj.(metav1.Object); !ok || o.GetName() == "" {
				t.Errorf("%s: an object without a name: %T", f, obj)
			}
		}
	}

	// The strictness the above relies on.
	good := "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n"
	if _, err := decode("good", []byte(good)); err != nil {
		t.Fatalf("a valid ServiceAccount: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field":   good + "automountServiceAcountToken: false\n",
		"wrong type":      good + "automountServiceAccountToken: \"no\"\n",
		"duplicate key":   good + "metadata:\n  name: b\n",
		"unexpected kind": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n",
	} {
		if _, err := decode(name, []byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestIssue14_02_CSIDriver: the CSIDriver object as the driver needs it.
func TestIssue14_02_CSIDriver(t *testing.T) {
	d := one[storagev1.CSIDriver](t, load(t, "csidriver.yaml"))
	if d.Name != driverName {
		t.Errorf("CSIDriver %q, want %q", d.Name, driverName)
	}
	s := d.Spec
	if s.AttachRequired == nil || *s.AttachRequired {
		t.Error("attachRequired must be false: nothing is attached")
	}
	if s.PodInfoOnMount == nil || !*s.PodInfoOnMount {
		t.Error("podInfoOnMount must be true: the pod's namespace and service account key its identity")
	}
	if !slices.Equal(s.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}) {
		t.Errorf("volumeLifecycleModes %v, want [Ephemeral] only", s.VolumeLifecycleModes)
	}
	var audiences []string
	for _, tr := range s.TokenRequests {
		audiences = append(audiences, tr.Audience)
		if tr.ExpirationSeconds != nil && *tr.ExpirationSeconds < 600 {
			t.Errorf("token %s: expirationSeconds %d, below the API's least (600)", tr.Audience, *tr.ExpirationSeconds)
		}
	}
	slices.Sort(audiences)
	if !slices.Equal(audiences, []string{"pods.eks.amazonaws.com", "sts.amazonaws.com"}) {
		t.Errorf("tokenRequests audiences %v, want sts.amazonaws.com (IRSA) and pods.eks.amazonaws.com (EKS Pod Identity)", audiences)
	}
	if s.RequiresRepublish == nil || !*s.RequiresRepublish {
		t.Error("requiresRepublish must be true: fresh tokens before the old ones expire")
	}
	if s.FSGroupPolicy == nil || *s.FSGroupPolicy != storagev1.FileFSGroupPolicy {
		t.Errorf("fsGroupPolicy %v, want File", ptrString(s.FSGroupPolicy))
	}
}

// ptrString prints what a pointer points to, or nil.
func ptrString[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// TestIssue14_03_NodePlugin: the node DaemonSet runs the driver with the
// registrar and the liveness probe, on sockets and paths that agree with
// each other and with the CSIDriver's name; the driver can mount (privileged,
// /dev/fuse, kubelet's directory with Bidirectional propagation) and has a
// read-only root, resources, a priority and tolerations as node plugins do;
// it has no identity of its own.
func TestIssue14_03_NodePlugin(t *testing.T) {
	objs := load(t, "node.yaml")
	ns := one[corev1.Namespace](t, objs)
	sa := one[corev1.ServiceAccount](t, objs)
	ds := one[appsv1.DaemonSet](t, objs)

	// Pod Security admission lets the privileged driver in.
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if got := ns.Labels["pod-security.kubernetes.io/"+mode]; got != "privileged" {
			t.Errorf("namespace %s: pod-security.kubernetes.io/%s=%q, want privileged", ns.Name, mode, got)
		}
	}
	if ds.Namespace != ns.Name || sa.Namespace != ns.Name {
		t.Errorf("DaemonSet in %q, ServiceAccount in %q, namespace %q", ds.Namespace, sa.Namespace, ns.Name)
	}
	pod := &ds.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("the DaemonSet runs as %q, the ServiceAccount is %q", pod.ServiceAccountName, sa.Name)
	}
	// The driver's own identity is never used for a pod's secrets: it has
	// no role, and no API token (kubelet hands it what it needs).
	for k := range sa.Annotations {
		if strings.HasPrefix(k, "eks.amazonaws.com/") {
			t.Errorf("the driver's ServiceAccount has %s: the driver must have no AWS identity of its own", k)
		}
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken ||
		pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the driver needs no Kubernetes API token: automountServiceAccountToken: false on its ServiceAccount and pod")
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v", ds.Spec.Selector, err)
	}
	if !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("the selector %v does not match the pod template's labels %v", ds.Spec.Selector, ds.Spec.Template.Labels)
	}

	// Scheduling as node plugins are: on every Linux node whatever its
	// taints, evicted last.
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	if !slices.ContainsFunc(pod.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
	}) {
		t.Errorf("tolerations %v do not tolerate every taint (operator: Exists)", pod.Tolerations)
	}
	if pod.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v: the driver runs on Linux nodes only", pod.NodeSelector)
	}

	if len(pod.Containers) != 3 {
		t.Fatalf("%d containers, want the driver, node-driver-registrar and livenessprobe", len(pod.Containers))
	}
	var driver, registrar, probe *corev1.Container
	for i := range pod.Containers {
		c := &pod.Containers[i]
		switch {
		case strings.HasPrefix(c.Image, "registry.k8s.io/sig-storage/csi-node-driver-registrar:"):
			registrar = c
		case strings.HasPrefix(c.Image, "registry.k8s.io/sig-storage/livenessprobe:"):
			probe = c
		case strings.Contains(c.Image, "secretsfs"):
			driver = c
		}
	}
	if driver == nil || registrar == nil || probe == nil {
		t.Fatalf("containers %v: want one of the secretsfs image, one of csi-node-driver-registrar and one of livenessprobe (registry.k8s.io/sig-storage)", pod.Containers)
	}

	// The driver: the same image as the node-wide DaemonSet, its csi
	// command, the node's name as the node id.
	nodeWide := one[appsv1.DaemonSet](t, load(t, filepath.Join("..", "daemonset.yaml")))
	if want := nodeWide.Spec.Template.Spec.Containers[0].Image; driver.Image != want {
		t.Errorf("driver image %q, not the image the other manifests name (%q; README \"Docker\" builds it)", driver.Image, want)
	}
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(driver.Command) < 2 || driver.Command[1] != "csi" || !bytes.Contains(dockerfile, []byte(" "+driver.Command[0]+"\n")) {
		t.Errorf("driver command %q: want the image's binary (as the Dockerfile installs it) and its csi command", driver.Command)
	}
	args := append(slices.Clone(driver.Command), driver.Args...)
	endpoint, _ := flagValue(args, "--endpoint")
	sock, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || !path.IsAbs(sock) {
		t.Fatalf("driver --endpoint %q, want unix:///PATH", endpoint)
	}
	if id, _ := flagValue(args, "--node-id"); id != "$(NODE_NAME)" || !slices.ContainsFunc(driver.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Errorf("driver --node-id %q: want $(NODE_NAME) from the downward API's spec.nodeName", id)
	}
	sc := driver.SecurityContext
	if sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Error("the driver must be privileged: Bidirectional propagation requires it, and mounting needs CAP_SYS_ADMIN")
	}
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("the driver must run as root to mount with mount(2), without fusermount3")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the driver's root filesystem must be read-only")
	}

	// Where it mounts: kubelet's directory, propagated back to the host.
	var kubelet, fuse bool
	for _, m := range driver.VolumeMounts {
		v := volume(pod, m.Name)
		if v == nil || v.HostPath == nil {
			continue
		}
		switch v.HostPath.Path {
		case kubeletDir:
			kubelet = m.MountPath == kubeletDir && m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional && !m.ReadOnly
		case "/dev/fuse":
			fuse = m.MountPath == "/dev/fuse" && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathCharDev
		}
	}
	if !kubelet {
		t.Errorf("the driver does not mount the host's %s at the same path with mountPropagation: Bidirectional: kubelet's target paths would not see its mounts", kubeletDir)
	}
	if !fuse {
		t.Error("the driver does not mount the host's /dev/fuse (hostPath type CharDevice)")
	}

	// One socket, seen by all three and by kubelet: the driver listens on
	// it, the sidecars dial it, the registrar tells kubelet its host path,
	// which is in the plugin directory named after the driver.
	hostSock, _, ok := hostPathOf(pod, driver, sock)
	if !ok {
		t.Fatalf("the driver's socket %s is not on a hostPath volume", sock)
	}
	if want := path.Join(kubeletDir, "plugins", driverName, "csi.sock"); hostSock != want {
		t.Errorf("the driver's socket is %s on the node, want %s (kubelet's plugin directory for %s)", hostSock, want, driverName)
	}
	regPath, _ := flagValue(registrar.Args, "--kubelet-registration-path")
	if regPath != hostSock || !strings.Contains(regPath, "/"+driverName+"/") {
		t.Errorf("registrar --kubelet-registration-path %q, want the driver's socket on the node %q (which names %s)", regPath, hostSock, driverName)
	}
	for _, c := range []*corev1.Container{registrar, probe} {
		addr, _ := flagValue(c.Args, "--csi-address")
		if got, _, ok := hostPathOf(pod, c, addr); !ok || got != hostSock {
			t.Errorf("%s: --csi-address %q is %q on the node, not the driver's socket %s", c.Name, addr, got, hostSock)
		}
	}
	if _, m, ok := hostPathOf(pod, registrar, "/registration/x"); !ok || volume(pod, m.Name).HostPath.Path != path.Join(kubeletDir, "plugins_registry") {
		t.Errorf("the registrar's /registration is not the host's %s/plugins_registry", kubeletDir)
	}

	// Liveness: the driver's probe is served by the livenessprobe sidecar
	// (which calls the driver's Probe); the registrar has its own.
	lp := driver.LivenessProbe
	if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" {
		t.Fatalf("the driver has no HTTP liveness probe on /healthz: %+v", lp)
	}
	port := lp.HTTPGet.Port.IntValue()
	for _, p := range driver.Ports {
		if p.Name == lp.HTTPGet.Port.String() {
			port = int(p.ContainerPort)
		}
	}
	if ep, _ := flagValue(probe.Args, "--http-endpoint"); ep != fmt.Sprintf(":%d", port) {
		t.Errorf("the driver's liveness probe asks port %d, the livenessprobe sidecar serves %q", port, ep)
	}
	if lp.PeriodSeconds*max(lp.FailureThreshold, 3) < 60 {
		t.Errorf("the driver is restarted within a minute of failing its probe (period %ds x %d); a restart leaves every volume on the node unserved until kubelet republishes", lp.PeriodSeconds, lp.FailureThreshold)
	}
	if rp := registrar.LivenessProbe; rp == nil || rp.HTTPGet == nil {
		t.Error("the registrar has no liveness probe")
	} else if ep, _ := flagValue(registrar.Args, "--http-endpoint"); !slices.ContainsFunc(registrar.Ports, func(p corev1.ContainerPort) bool {
		return (p.Name == rp.HTTPGet.Port.String() || int(p.ContainerPort) == rp.HTTPGet.Port.IntValue()) && ep == fmt.Sprintf(":%d", p.ContainerPort)
	}) {
		t.Errorf("the registrar's liveness probe asks port %v, it serves %q", rp.HTTPGet.Port, ep)
	}

	// Resources: requests for scheduling, a memory limit above the
	// daemon's own floor (README "Sizing and cost": 32 MiB plus the
	// secrets).
	for _, c := range pod.Containers {
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit, got %+v", c.Name, c.Resources)
		} else if lim.Memory().Cmp(*req.Memory()) < 0 {
			t.Errorf("%s: memory limit %v below the request %v", c.Name, lim.Memory(), req.Memory())
		}
		if c.Name != driver.Name && (c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem ||
			c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged) {
			t.Errorf("%s: a sidecar needs no privilege and a read-only root", c.Name)
		}
	}
	if floor := resource.MustParse("128Mi"); driver.Resources.Limits.Memory().Cmp(floor) < 0 {
		t.Errorf("the driver's memory limit %v is below %v: 32 MiB plus 6 KiB per secret leaves too little for a node's pods", driver.Resources.Limits.Memory(), &floor)
	}
}

// TestIssue14_04_ImagesPinned: every image of the driver and the example
// is a version tag or a digest, never latest; the check refuses those.
func TestIssue14_04_ImagesPinned(t *testing.T) {
	n := 0
	for _, f := range manifestFiles(t) {
		for _, obj := range load(t, f) {
			_, spec, ok := podTemplate(obj)
			if !ok {
				continue
			}
			for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
				n++
				if !pinnedImage(c.Image) {
					t.Errorf("%s: container %s: image %q is not pinned (a version tag or @sha256:DIGEST)", f, c.Name, c.Image)
				}
				if c.ImagePullPolicy == corev1.PullAlways {
					t.Errorf("%s: container %s: imagePullPolicy Always with a pinned image", f, c.Name)
				}
			}
		}
	}
	if n < 4 {
		t.Fatalf("only %d containers checked", n)
	}
	for image, want := range map[string]bool{
		"registry.k8s.io/sig-storage/livenessprobe:v2.20.0": true,
		"registry.example.com/secretsfs:1.2.3":              true,
		"localhost:5000/secretsfs:1.2.3":                    true,
		"busybox@sha256:" + strings.Repeat("ab", 32):        true,
		"busybox":                  false,
		"busybox:latest":           false,
		"debian:bookworm-slim":     false,
		"localhost:5000/secretsfs": false,
		"busybox@sha256:" + strings.Repeat("a", 10): false,
	} {
		if pinnedImage(image) != want {
			t.Errorf("pinnedImage(%q) = %v, want %v", image, !want, want)
		}
	}
}

// example is the example workload, decoded.
type example struct {
	ns   *corev1.Namespace
	sa   *corev1.ServiceAccount
	dep  *appsv1.Deployment
	objs []any
}

func loadExample(t *testing.T) example {
	t.Helper()
	objs := load(t, filepath.Join("example", "app.yaml"))
	return example{
		ns:   one[corev1.Namespace](t, objs),
		sa:   one[corev1.ServiceAccount](t, objs),
		dep:  one[appsv1.Deployment](t, objs),
		objs: objs,
	}
}

// csiVolumes returns the pod's csi volumes by name.
func csiVolumes(spec *corev1.PodSpec) map[string]*corev1.CSIVolumeSource {
	out := map[string]*corev1.CSIVolumeSource{}
	for _, v := range spec.Volumes {
		if v.CSI != nil {
			out[v.Name] = v.CSI
		}
	}
	return out
}

// mappedFiles parses a volume's mapping attribute with secretsfs's own
// mapping parser.
func mappedFiles(t *testing.T, name, doc string) []mapping.File {
	t.Helper()
	cfg, err := mapping.Parse("volumeAttributes.mapping of "+name, []byte(doc))
	if err != nil {
		t.Fatalf("volume %s: the mapping does not parse: %v", name, err)
	}
	return cfg.Files
}

// TestIssue14_05_ExampleWorkload: the example runs in a namespace that
// enforces the restricted standard, and its pod passes that standard as Pod
// Security admission evaluates it (a copy with a hostPath volume or a
// privileged container does not); it reads its secrets only through inline
// csi volumes of this driver, under its own service account's role: one of
// explicit secrets mounted whole, one mapped in the ASCP objects: syntax
// with a key file mounted alone by subPath, the files' group from fsGroup.
func TestIssue14_05_ExampleWorkload(t *testing.T) {
	ex := loadExample(t)
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if got := ex.ns.Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
			t.Errorf("namespace %s: pod-security.kubernetes.io/%s=%q, want restricted", ex.ns.Name, mode, got)
		}
	}
	if v := ex.ns.Labels["pod-security.kubernetes.io/enforce-version"]; v != "" && v != "latest" {
		t.Errorf("enforce-version %q: the test evaluates the latest", v)
	}
	for _, o := range ex.objs {
		if m, ok := o.(metav1.Object); ok && m.GetNamespace() != ex.ns.Name && o != any(ex.ns) {
			t.Errorf("%T %s is in namespace %q, not %q", o, m.GetName(), m.GetNamespace(), ex.ns.Name)
		}
	}
	meta, pod := &ex.dep.Spec.Template.ObjectMeta, &ex.dep.Spec.Template.Spec
	if pod.ServiceAccountName != ex.sa.Name {
		t.Errorf("the pod runs as %q, the ServiceAccount is %q", pod.ServiceAccountName, ex.sa.Name)
	}

	// Pod Security admission, restricted, latest.
	if why := restrictedViolations(t, meta, pod); len(why) > 0 {
		t.Errorf("the example pod does not pass the restricted standard: %v", why)
	}
	withHostPath := pod.DeepCopy()
	withHostPath.Volumes = append(withHostPath.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/secretsfs"}}})
	privileged := pod.DeepCopy()
	privileged.Containers[0].SecurityContext.Privileged = new(true)
	for name, bad := range map[string]*corev1.PodSpec{"with a hostPath volume": withHostPath, "with a privileged container": privileged} {
		if len(restrictedViolations(t, meta, bad)) == 0 {
			t.Errorf("a copy of the example pod %s passes the restricted standard: the check cannot fail", name)
		}
	}

	// Nothing of the node: no hostPath at all.
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
	if sc := pod.SecurityContext; sc == nil || sc.FSGroup == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod sets no fsGroup (the files' group) or does not run as non-root")
	}

	// The csi volumes: this driver, read-only, known attributes, the
	// service account's role.
	d := one[storagev1.CSIDriver](t, load(t, "csidriver.yaml"))
	vols := csiVolumes(pod)
	if len(vols) != len(pod.Volumes) || len(vols) < 2 {
		t.Fatalf("volumes %v: want only csi volumes, at least two", pod.Volumes)
	}
	role := ex.sa.Annotations["eks.amazonaws.com/role-arn"]
	var explicit, mapped string
	for name, v := range vols {
		if v.Driver != d.Name {
			t.Errorf("volume %s: driver %q, the CSIDriver is %q", name, v.Driver, d.Name)
		}
		if v.ReadOnly == nil || !*v.ReadOnly {
			t.Errorf("volume %s: not readOnly", name)
		}
		for k := range v.VolumeAttributes {
			if !slices.Contains(volumeAttributes, k) {
				t.Errorf("volume %s: attribute %q is not one the driver takes (%v)", name, k, volumeAttributes)
			}
		}
		if v.VolumeAttributes["region"] == "" {
			t.Errorf("volume %s: no region", name)
		}
		if got := v.VolumeAttributes["roleArn"]; got != role || !regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:role/`).MatchString(got) {
			t.Errorf("volume %s: roleArn %q, the ServiceAccount's role %q", name, got, role)
		}
		switch {
		case v.VolumeAttributes["secrets"] != "":
			explicit = name
		case strings.Contains(v.VolumeAttributes["mapping"], "objects:"):
			mapped = name
		}
	}
	if explicit == "" || mapped == "" {
		t.Fatalf("want a volume of explicit secrets and one mapped with objects:, got %v", vols)
	}
	files := mappedFiles(t, mapped, vols[mapped].VolumeAttributes["mapping"])
	if len(files) == 0 || !slices.ContainsFunc(files, func(f mapping.File) bool { return strings.HasPrefix(f.Where, "objects[") && f.Key != nil }) {
		t.Errorf("volume %s: no key file from objects: jmesPath: %+v", mapped, files)
	}

	// Mounted whole, and one key file by subPath, read-only.
	var whole, sub bool
	for _, c := range pod.Containers {
		for _, m := range c.VolumeMounts {
			if !m.ReadOnly {
				t.Errorf("%s: volume %s mounted writable", c.Name, m.Name)
			}
			checkPropagation(t, c.Name, m)
			switch {
			case m.Name == explicit && m.SubPath == "":
				whole = true
			case m.Name == mapped && m.SubPath != "":
				sub = slices.ContainsFunc(files, func(f mapping.File) bool { return f.Path == m.SubPath && f.Key != nil })
				if !sub {
					t.Errorf("%s: subPath %q of volume %s is not a key file of its mapping", c.Name, m.SubPath, mapped)
				}
			}
		}
	}
	if !whole || !sub {
		t.Errorf("want volume %s mounted whole (%v) and a key file of %s by subPath (%v)", explicit, whole, mapped, sub)
	}
}

// checkPropagation: a container mounts a volume of the driver with
// HostToContainer propagation, which lets the mount that a restarted driver
// makes over its old one reach the running container (subPath included).
func checkPropagation(t *testing.T, container string, m corev1.VolumeMount) {
	t.Helper()
	if m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer {
		t.Errorf("%s: volume %s (subPath %q) is mounted without mountPropagation: HostToContainer", container, m.Name, m.SubPath)
	}
}

// policyDoc is an IAM policy document.
type policyDoc struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Principal map[string]string
		Action    stringList
		Resource  stringList
		Condition map[string]map[string]stringList
	}
}

// stringList is an IAM value that is a string or a list of strings.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func loadPolicy(t *testing.T, name string) policyDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("example", "iam", name))
	if err != nil {
		t.Fatal(err)
	}
	var p policyDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if p.Version != "2012-10-17" || len(p.Statement) == 0 {
		t.Fatalf("%s: version %q, %d statements", name, p.Version, len(p.Statement))
	}
	for i, s := range p.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: statement %d: effect %q", name, i, s.Effect)
		}
	}
	return p
}

// iamMatch reports whether an IAM resource pattern (* any run of
// characters, ? one character) matches s.
func iamMatch(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

// secretARN is the ARN Secrets Manager gives a secret: its name and a dash
// and six random characters.
func secretARN(region, account, name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbC123", region, account, name)
}

// TestIssue14_06_IAMPolicies: the IAM role's trust policies let exactly the
// example's service account in (IRSA: the cluster's OIDC provider, the
// sts.amazonaws.com audience and the service account's subject; EKS Pod
// Identity: the pods.eks.amazonaws.com service with AssumeRole and
// TagSession, narrowed to that namespace and service account), and its
// permissions read exactly the secrets the example's volumes name.
func TestIssue14_06_IAMPolicies(t *testing.T) {
	ex := loadExample(t)
	subject := fmt.Sprintf("system:serviceaccount:%s:%s", ex.ns.Name, ex.sa.Name)
	role := ex.sa.Annotations["eks.amazonaws.com/role-arn"]
	account := strings.Split(role, ":")[4]

	irsa := loadPolicy(t, "trust-policy-irsa.json")
	if len(irsa.Statement) != 1 {
		t.Fatalf("IRSA trust policy: %d statements, want 1", len(irsa.Statement))
	}
	s := irsa.Statement[0]
	provider, ok := strings.CutPrefix(s.Principal["Federated"], "arn:aws:iam::"+account+":oidc-provider/")
	if !ok || provider == "" {
		t.Errorf("IRSA: principal %v is not the cluster's OIDC provider in account %s", s.Principal, account)
	}
	if !slices.Equal(s.Action, stringList{"sts:AssumeRoleWithWebIdentity"}) {
		t.Errorf("IRSA: action %v, want sts:AssumeRoleWithWebIdentity", s.Action)
	}
	eq := s.Condition["StringEquals"]
	if !slices.Equal(eq[provider+":aud"], stringList{"sts.amazonaws.com"}) || !slices.Equal(eq[provider+":sub"], stringList{subject}) || len(s.Condition) != 1 {
		t.Errorf("IRSA: condition %v, want StringEquals %s:aud = sts.amazonaws.com and %s:sub = %s", s.Condition, provider, provider, subject)
	}

	pi := loadPolicy(t, "trust-policy-pod-identity.json")
	if len(pi.Statement) != 1 {
		t.Fatalf("Pod Identity trust policy: %d statements, want 1", len(pi.Statement))
	}
	s = pi.Statement[0]
	if s.Principal["Service"] != "pods.eks.amazonaws.com" || len(s.Principal) != 1 {
		t.Errorf("Pod Identity: principal %v, want the service pods.eks.amazonaws.com", s.Principal)
	}
	if a := slices.Sorted(slices.Values(s.Action)); !slices.Equal(a, []string{"sts:AssumeRole", "sts:TagSession"}) {
		t.Errorf("Pod Identity: actions %v, want sts:AssumeRole and sts:TagSession", a)
	}
	eq = s.Condition["StringEquals"]
	if !slices.Equal(eq["aws:RequestTag/kubernetes-namespace"], stringList{ex.ns.Name}) || !slices.Equal(eq["aws:RequestTag/kubernetes-service-account"], stringList{ex.sa.Name}) {
		t.Errorf("Pod Identity: condition %v, want the session tags kubernetes-namespace = %s and kubernetes-service-account = %s", s.Condition, ex.ns.Name, ex.sa.Name)
	}

	// Permissions: every secret a volume names, and no other.
	perm := loadPolicy(t, "permissions-policy.json")
	allowed := func(action, resource string) bool {
		for _, s := range perm.Statement {
			if slices.Contains(s.Action, action) && slices.ContainsFunc(s.Resource, func(p string) bool { return iamMatch(p, resource) }) {
				return true
			}
		}
		return false
	}
	var listing bool
	var secrets [][2]string // region, id
	for name, v := range csiVolumes(&ex.dep.Spec.Template.Spec) {
		region := v.VolumeAttributes["region"]
		listing = listing || v.VolumeAttributes["prefix"] != "" || v.VolumeAttributes["tags"] != ""
		for _, id := range strings.FieldsFunc(v.VolumeAttributes["secrets"], func(r rune) bool { return r == ',' || r == '\n' }) {
			secrets = append(secrets, [2]string{region, strings.TrimSpace(id)})
		}
		if doc := v.VolumeAttributes["mapping"]; doc != "" {
			for _, f := range mappedFiles(t, name, doc) {
				secrets = append(secrets, [2]string{region, f.Ref.SecretID})
			}
		}
	}
	if len(secrets) < 2 {
		t.Fatalf("the example's volumes name %v", secrets)
	}
	for _, rs := range secrets {
		region, id := rs[0], rs[1]
		arn := secretARN(region, account, id)
		for _, action := range []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"} {
			if !allowed(action, arn) {
				t.Errorf("the permissions policy does not allow %s on %s (%s)", action, id, arn)
			}
		}
		if allowed("secretsmanager:GetSecretValue", secretARN(region, account, id+"x")) {
			t.Errorf("the permissions policy allows GetSecretValue on %sx too: narrow it to the secrets' ARNs", id)
		}
	}
	if !allowed("secretsmanager:BatchGetSecretValue", "*") {
		t.Error("the permissions policy lacks secretsmanager:BatchGetSecretValue (on *: it cannot be narrowed), which cuts the calls")
	}
	if got := allowed("secretsmanager:ListSecrets", "*"); got && !listing {
		t.Error("the permissions policy allows secretsmanager:ListSecrets, which only volumes with prefix or tags need (the example has none)")
	} else if !got && listing {
		t.Error("a volume lists by prefix or tags, and the permissions policy lacks secretsmanager:ListSecrets")
	}
	for _, s := range perm.Statement {
		for _, a := range s.Action {
			if strings.HasSuffix(a, "*") || !strings.HasPrefix(a, "secretsmanager:") {
				t.Errorf("the permissions policy allows %q: name the actions", a)
			}
		}
	}
}
