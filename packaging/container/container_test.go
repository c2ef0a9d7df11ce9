package container

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// parseDockerfile splits a Dockerfile into instructions: comments and blank
// lines dropped, lines ending in a backslash joined with the next.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends in a continuation line", path)
	}
	return out
}

// stage is one FROM ... AS name and its instructions.
type stage struct {
	base, name string
	ins        []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func stages(t *testing.T, ins []instruction) []stage {
	t.Helper()
	var out []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			s := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			out = append(out, s)
			continue
		}
		if len(out) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		out[len(out)-1].ins = append(out[len(out)-1].ins, in)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ins := parseDockerfile(t, "Dockerfile")
	for _, in := range ins {
		if !slices.Contains([]string{"FROM", "WORKDIR", "COPY", "RUN", "ARG", "ENV", "USER", "ENTRYPOINT", "CMD", "STOPSIGNAL", "LABEL"}, in.cmd) {
			t.Errorf("line %d: unexpected instruction %s", in.line, in.cmd)
		}
	}
	st := stages(t, ins)
	if len(st) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(st))
	}
	build, final := st[0], st[len(st)-1]
	if build.name == "" || !strings.HasPrefix(build.base, "golang:1.26") {
		t.Errorf("build stage FROM %s AS %q, want a named golang:1.26 stage", build.base, build.name)
	}

	// The build: static, versioned, from the repository root's go.mod.
	var goBuild string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			goBuild = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-o /out/secretsfs"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the go build lacks %q: %s", want, goBuild)
		}
	}
	if !slices.ContainsFunc(build.all("ARG"), func(in instruction) bool { return strings.HasPrefix(in.args, "VERSION") }) {
		t.Error("no ARG VERSION in the build stage")
	}
	root := filepath.Join("..", "..")
	for _, in := range build.all("COPY") {
		for _, src := range strings.Fields(in.args)[:len(strings.Fields(in.args))-1] {
			if strings.HasPrefix(src, "--") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("line %d: COPY %s: not in the build context (the repository root): %v", in.line, src, err)
			}
		}
	}

	// The runtime stage: the binary from the build stage, run as root with
	// "mount" as the entrypoint. As root the daemon mounts with mount(2), so
	// the image needs no fuse3; a non-root image would need it.
	copies := final.all("COPY")
	if !slices.ContainsFunc(copies, func(in instruction) bool {
		return strings.HasPrefix(in.args, "--from="+build.name+" /out/secretsfs /usr/bin/secretsfs")
	}) {
		t.Errorf("the final stage does not copy the binary from %q: %v", build.name, copies)
	}
	if len(final.all("RUN")) > 0 && !strings.Contains(string(raw), "fuse3") {
		t.Error("the final stage runs commands; it should be the static base image plus the binary")
	}
	users := final.all("USER")
	if len(users) != 1 || (users[0].args != "0:0" && users[0].args != "0" && users[0].args != "root") {
		if !strings.Contains(string(raw), "apt-get install") || !strings.Contains(string(raw), "fuse3") {
			t.Errorf("the final stage runs as %v; a non-root user needs fuse3 (fusermount3) installed", users)
		}
	}
	var entry []string
	if e := final.all("ENTRYPOINT"); len(e) != 1 {
		t.Fatalf("%d ENTRYPOINTs in the final stage, want 1", len(e))
	} else if err := yaml.Unmarshal([]byte(e[0].args), &entry); err != nil {
		t.Fatalf("ENTRYPOINT %s is not the exec (JSON) form: %v", e[0].args, err)
	}
	if !slices.Equal(entry, []string{"/usr/bin/secretsfs", "mount"}) {
		t.Errorf("ENTRYPOINT = %q", entry)
	}
	var cmd []string
	if c := final.all("CMD"); len(c) != 1 || yaml.Unmarshal([]byte(c[0].args), &cmd) != nil || len(cmd) != 1 {
		t.Errorf("CMD = %v, want the default mount point in exec form", c)
	}
	if !slices.ContainsFunc(copies, func(in instruction) bool { return strings.HasSuffix(in.args, " "+cmd[0]) }) {
		t.Errorf("the default mount point %v is not created in the image", cmd)
	}

	// The FUSE runtime needs are documented where the image is built.
	for _, want := range []string{"--device /dev/fuse", "--cap-add SYS_ADMIN", "apparmor:unconfined", "bind-propagation=rshared"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("the Dockerfile's header does not show %q", want)
		}
	}
}

// The subset of Kubernetes objects the checks read.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		podSpec  `yaml:",inline"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName string      `yaml:"serviceAccountName"`
	InitContainers     []container `yaml:"initContainers"`
	Containers         []container `yaml:"containers"`
	Volumes            []volume    `yaml:"volumes"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type container struct {
	Name           string          `yaml:"name"`
	Image          string          `yaml:"image"`
	Args           []string        `yaml:"args"`
	RestartPolicy  string          `yaml:"restartPolicy"`
	Ports          []containerPort `yaml:"ports"`
	LivenessProbe  *probe          `yaml:"livenessProbe"`
	ReadinessProbe *probe          `yaml:"readinessProbe"`
	StartupProbe   *probe          `yaml:"startupProbe"`
	Env            []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	SecurityContext *struct {
		Privileged   *bool `yaml:"privileged"`
		RunAsUser    *int  `yaml:"runAsUser"`
		Capabilities struct {
			Add []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name             string `yaml:"name"`
		MountPath        string `yaml:"mountPath"`
		ReadOnly         bool   `yaml:"readOnly"`
		MountPropagation string `yaml:"mountPropagation"`
	} `yaml:"volumeMounts"`
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
	EmptyDir *struct {
		Medium string `yaml:"medium"`
	} `yaml:"emptyDir"`
}

// manifests reads every YAML document of a file.
func manifests(t *testing.T, name string) []object {
	t.Helper()
	f, err := os.Open(filepath.Join("k8s", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: an object without apiVersion, kind or metadata.name: %+v", name, o)
		}
		out = append(out, o)
	}
}

func find(t *testing.T, objs []object, kind string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind {
			return o
		}
	}
	t.Fatalf("no %s", kind)
	return object{}
}

func (p podSpec) volume(name string) volume {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v
		}
	}
	return volume{}
}

// checkMounter checks the container that runs secretsfs and returns the
// volume it mounts on with Bidirectional propagation.
func checkMounter(t *testing.T, p podSpec, c container) volume {
	t.Helper()
	if !strings.Contains(c.Image, "secretsfs") {
		t.Errorf("%s: image %q", c.Name, c.Image)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("%s: no securityContext", c.Name)
	}
	// Bidirectional propagation is only allowed in privileged containers.
	if sc.Privileged == nil || !*sc.Privileged {
		t.Errorf("%s: not privileged, which Bidirectional propagation requires", c.Name)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("%s: must run as root to mount without fusermount3", c.Name)
	}
	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: no memory request and limit", c.Name)
	}
	var bidir, fuse string
	for _, m := range c.VolumeMounts {
		switch {
		case m.MountPropagation == "Bidirectional":
			bidir = m.Name
			if len(c.Args) == 0 || c.Args[len(c.Args)-1] != m.MountPath {
				t.Errorf("%s: the mount point argument %v is not the Bidirectional volume's path %s", c.Name, c.Args, m.MountPath)
			}
			if m.ReadOnly {
				t.Errorf("%s: the Bidirectional mount is read-only", c.Name)
			}
		case m.MountPath == "/dev/fuse":
			fuse = m.Name
		}
	}
	if bidir == "" {
		t.Fatalf("%s: no volume mounted with mountPropagation: Bidirectional", c.Name)
	}
	if v := p.volume(fuse); v.HostPath == nil || v.HostPath.Path != "/dev/fuse" || v.HostPath.Type != "CharDevice" {
		t.Errorf("%s: /dev/fuse is not mounted from the host's character device", c.Name)
	}
	if !slices.Contains(c.Args, "--allow-other") {
		t.Errorf("%s: without --allow-other no other container's user can enter the mount", c.Name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["AWS_REGION"] == "" {
		t.Errorf("%s: no AWS_REGION", c.Name)
	}
	return p.volume(bidir)
}

// checkConsumer checks that an application container sees the mount.
func checkConsumer(t *testing.T, c container, vol string) {
	t.Helper()
	ok := false
	for _, m := range c.VolumeMounts {
		if m.Name == vol {
			ok = true
			if m.MountPropagation != "HostToContainer" || !m.ReadOnly {
				t.Errorf("%s: mounts %s with propagation %q, readOnly %v; want HostToContainer, read-only", c.Name, vol, m.MountPropagation, m.ReadOnly)
			}
		}
	}
	if !ok {
		t.Errorf("%s: does not mount the volume %s", c.Name, vol)
	}
	if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
		t.Errorf("%s: the application need not be privileged", c.Name)
	}
	if c.Resources.Requests["memory"] == "" {
		t.Errorf("%s: no memory request", c.Name)
	}
}

func TestDaemonSet(t *testing.T) {
	objs := manifests(t, "daemonset.yaml")
	ds := find(t, objs, "DaemonSet")
	sa := find(t, objs, "ServiceAccount")
	if ds.APIVersion != "apps/v1" {
		t.Errorf("DaemonSet apiVersion %s", ds.APIVersion)
	}
	pod := ds.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Metadata.Name || sa.Metadata.Namespace != ds.Metadata.Namespace {
		t.Errorf("the DaemonSet runs as %q, the ServiceAccount is %s/%s", pod.ServiceAccountName, sa.Metadata.Namespace, sa.Metadata.Name)
	}
	if !strings.HasPrefix(sa.Metadata.Annotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::") {
		t.Error("the ServiceAccount has no IRSA role annotation")
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the selector %s=%s does not match the pod template", k, v)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	v := checkMounter(t, pod, pod.Containers[0])
	if v.HostPath == nil || v.HostPath.Path == "" || v.HostPath.Type != "DirectoryOrCreate" {
		t.Fatalf("the Bidirectional volume is not a hostPath directory: %+v", v)
	}

	// A consumer reads the same host directory.
	consumer := find(t, manifests(t, "consumer.yaml"), "Pod")
	var vol string
	for _, cv := range consumer.Spec.Volumes {
		if cv.HostPath != nil && cv.HostPath.Path == v.HostPath.Path {
			vol = cv.Name
		}
	}
	if vol == "" {
		t.Fatalf("consumer.yaml does not mount the host path %s", v.HostPath.Path)
	}
	for _, c := range consumer.Spec.Containers {
		checkConsumer(t, c, vol)
	}
}

func TestSidecar(t *testing.T) {
	objs := manifests(t, "sidecar.yaml")
	dep := find(t, objs, "Deployment")
	sa := find(t, objs, "ServiceAccount")
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Metadata.Name || sa.Metadata.Annotations["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("the pod's service account %q is not the annotated one", pod.ServiceAccountName)
	}
	// A native sidecar: an init container that keeps running.
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].RestartPolicy != "Always" {
		t.Fatalf("want one init container with restartPolicy: Always (native sidecar), got %+v", pod.InitContainers)
	}
	v := checkMounter(t, pod, pod.InitContainers[0])
	if v.EmptyDir == nil {
		t.Fatalf("the shared volume is not an emptyDir: %+v", v)
	}
	if len(pod.Containers) == 0 {
		t.Fatal("no application container")
	}
	for _, c := range pod.Containers {
		checkConsumer(t, c, v.Name)
	}
}

// readmeImage is the image the README's "docker buildx build ... -t IMAGE
// --push" pushes, which the manifests must name: nobody publishes an image
// for them, so the operator builds and pushes it.
func readmeImage(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`docker buildx build [^\n]*(?:\\\n[^\n]*)*? -t (\S+)[^\n]*(?:\\\n[^\n]*)*? --push`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README shows no docker buildx build ... -t IMAGE ... --push")
	}
	return string(m[1])
}

// TestIssue10_10_BaseImagesPinnedByDigest: every FROM names its image by tag
// and digest (a tag alone can change under the build), the multi-arch build
// compiles on the build platform for the target one, and the Dockerfile says
// how to refresh the digests.
func TestIssue10_10_BaseImagesPinnedByDigest(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`^[a-z0-9./-]+(:[A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}$`)
	st := stages(t, parseDockerfile(t, "Dockerfile"))
	for _, s := range st {
		if !pinned.MatchString(s.base) {
			t.Errorf("FROM %s: not pinned as image:tag@sha256:DIGEST", s.base)
		}
	}
	if !bytes.Contains(raw, []byte("docker buildx imagetools inspect")) {
		t.Error("the Dockerfile does not say how to refresh the digests (docker buildx imagetools inspect)")
	}
	ins := parseDockerfile(t, "Dockerfile")
	if !slices.ContainsFunc(ins, func(in instruction) bool {
		return in.cmd == "FROM" && strings.HasPrefix(in.args, "--platform=$BUILDPLATFORM ") && strings.HasSuffix(in.args, " AS "+st[0].name)
	}) {
		t.Error("the build stage does not run on $BUILDPLATFORM (a multi-arch build would compile under emulation)")
	}
	var goBuild string
	for _, in := range st[0].all("RUN") {
		if strings.Contains(in.args, "go build") {
			goBuild = in.args
		}
	}
	if !strings.Contains(goBuild, "GOARCH=${TARGETARCH}") {
		t.Errorf("the go build does not target $TARGETARCH: %s", goBuild)
	}
}

// dockerignored reports whether .dockerignore's patterns leave path (slash
// separated, relative to the context) out of the build context: the last
// matching pattern decides, "!" re-includes, a pattern matching a directory
// covers what is below it, "**" matches any number of directories.
func dockerignored(patterns []string, path string) bool {
	out := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(?:.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("(?:/.*)?$")
		if regexp.MustCompile(re.String()).MatchString(path) {
			out = !neg
		}
	}
	return out
}

// TestIssue10_10_DockerIgnore: the build context (the repository root)
// leaves out what the image's build never reads (.git, test files, built
// packages) and keeps every file "go build" of the binary needs.
func TestIssue10_10_DockerIgnore(t *testing.T) {
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, path := range []string{".git", ".git/config", "dist/secretsfs_1.2.3_amd64.deb", "fs/fs_test.go", "test/emulator/testdata/seed.json"} {
		if !dockerignored(patterns, path) {
			t.Errorf("%s is in the build context", path)
		}
	}
	// What the build reads: go.mod, go.sum and the Go files of every
	// package of this module the binary is built from.
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}`, "github.com/secretsfs/secretsfs").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, f)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	if len(needed) < 20 {
		t.Fatalf("only %d files found for the build: %v", len(needed), needed)
	}
	for _, path := range needed {
		if dockerignored(patterns, path) {
			t.Errorf("%s is needed by the build but left out of the context", path)
		}
	}
}

// TestIssue10_10_Manifests: the containers that run secretsfs run the image
// the README builds and pushes, are privileged without redundant
// capabilities, are probed on /healthz (liveness and readiness; the
// sidecar's startup probe holds the application back until the mount
// serves), and the DaemonSet's namespace admits privileged pods.
func TestIssue10_10_Manifests(t *testing.T) {
	objs := manifests(t, "daemonset.yaml")
	ds := find(t, objs, "DaemonSet")
	// Pod Security admission: the privileged container needs the
	// namespace's level to be privileged, or the pods are refused.
	ns := find(t, objs, "Namespace")
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if got := ns.Metadata.Labels["pod-security.kubernetes.io/"+mode]; got != "privileged" {
			t.Errorf("namespace %s: pod-security.kubernetes.io/%s=%q, want privileged", ns.Metadata.Name, mode, got)
		}
	}
	if ds.Metadata.Namespace != ns.Metadata.Name {
		t.Errorf("the DaemonSet is in %q, the labelled namespace is %q", ds.Metadata.Namespace, ns.Metadata.Name)
	}
	dep := find(t, manifests(t, "sidecar.yaml"), "Deployment")
	if len(dep.Spec.Template.Spec.InitContainers) == 0 {
		t.Fatal("no sidecar")
	}
	sidecar := dep.Spec.Template.Spec.InitContainers[0]
	// The application starts once the sidecar's startup probe passes: once
	// the mount serves.
	if sp := sidecar.StartupProbe; sp == nil || sp.HTTPGet == nil || sp.HTTPGet.Path != "/healthz" {
		t.Errorf("the sidecar has no startup probe on /healthz: %+v", sp)
	}
	for _, c := range []container{ds.Spec.Template.Spec.Containers[0], sidecar} {
		if c.Image != readmeImage(t) {
			t.Errorf("%s: image %q, not the one the README builds and pushes (%q)", c.Name, c.Image, readmeImage(t))
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Fatalf("%s: no securityContext", c.Name)
		}
		// A privileged container has every capability: adding one is noise
		// that suggests the others are dropped.
		if len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: privileged, yet adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
		// Liveness and readiness: /healthz on the metrics port, which must
		// then listen beyond loopback.
		for name, probe := range map[string]*probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: %s is not an HTTP GET of /healthz: %+v", c.Name, name, probe)
				continue
			}
			port := slices.IndexFunc(c.Ports, func(p containerPort) bool {
				return p.Name == probe.HTTPGet.Port || fmt.Sprint(p.ContainerPort) == probe.HTTPGet.Port
			})
			if port < 0 || !slices.Contains(c.Args, fmt.Sprintf("--metrics-listen=0.0.0.0:%d", c.Ports[port].ContainerPort)) ||
				!slices.Contains(c.Args, "--metrics-allow-remote") {
				t.Errorf("%s: %s probes port %q, but the daemon does not serve /healthz there (args %v, ports %+v)", c.Name, name, probe.HTTPGet.Port, c.Args, c.Ports)
			}
		}
		if c.LivenessProbe != nil && c.LivenessProbe.PeriodSeconds*max(c.LivenessProbe.FailureThreshold, 3) < 60 {
			t.Errorf("%s: the liveness probe restarts the daemon (and drops the mount) within a minute of failing: %+v", c.Name, c.LivenessProbe)
		}
	}
}
