package container

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
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

type container struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Env           []struct {
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
	if !slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") {
		t.Errorf("%s: CAP_SYS_ADMIN is not added", c.Name)
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
