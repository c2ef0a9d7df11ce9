package csi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// readmeSection returns the README's section under the heading, up to the
// next heading of the same level or above.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("the README has no %q", heading)
	}
	s = s[i+1+len(heading):]
	level := strings.Index(heading, " ")
	if j := regexp.MustCompile(`\n#{1,` + strconv.Itoa(level) + `} `).FindStringIndex(s); j != nil {
		s = s[:j[0]]
	}
	return s
}

// fenced returns the bodies of the section's fenced blocks of a language.
func fenced(section, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)\n```"+lang+"\n(.*?)\n```").FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestIssue14_07_README: the README's Kubernetes section leads with the CSI
// driver and keeps the node-wide DaemonSet; its links lead to files that
// exist; its install command applies this directory; it names the sidecar
// images node.yaml runs and every volume attribute; its example pod decodes
// strictly, uses this driver, pins its image and passes the restricted
// standard; its trust policies are the files' own.
func TestIssue14_07_README(t *testing.T) {
	sec := readmeSection(t, "### Kubernetes")
	csiAt, nodeWideAt := strings.Index(sec, "csi.secretsfs.io"), strings.Index(sec, "daemonset.yaml")
	if csiAt < 0 || nodeWideAt < 0 || csiAt > nodeWideAt || csiAt > 400 {
		t.Errorf("the Kubernetes section does not lead with the CSI driver (at %d) and keep the node-wide DaemonSet (at %d)", csiAt, nodeWideAt)
	}
	root := filepath.Join("..", "..", "..", "..")
	for _, m := range regexp.MustCompile(`\]\((packaging/[^)#]*)\)`).FindAllStringSubmatch(sec, -1) {
		if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
			t.Errorf("the README links to %s: %v", m[1], err)
		}
	}
	if !strings.Contains(sec, "kubectl apply -f packaging/container/k8s/csi/\n") {
		t.Error("the README does not show kubectl apply -f packaging/container/k8s/csi/")
	}
	ds := one[appsv1.DaemonSet](t, load(t, "node.yaml"))
	for _, c := range ds.Spec.Template.Spec.Containers {
		if strings.HasPrefix(c.Image, "registry.k8s.io/") && !strings.Contains(sec, "`"+c.Image+"`") {
			t.Errorf("the README does not name the image %s that node.yaml runs", c.Image)
		}
	}
	for _, a := range volumeAttributes {
		if !strings.Contains(sec, "`"+a+"`") {
			t.Errorf("the README's attribute table lacks `%s`", a)
		}
	}

	// The example pod.
	pods := 0
	for _, y := range fenced(sec, "yaml") {
		objs, err := decode("README", []byte(y))
		if err != nil {
			t.Errorf("a YAML block of the README: %v", err)
			continue
		}
		for _, o := range objs {
			pod, ok := o.(*corev1.Pod)
			if !ok {
				continue
			}
			pods++
			if why := restrictedViolations(t, &pod.ObjectMeta, &pod.Spec); len(why) > 0 {
				t.Errorf("the README's pod does not pass the restricted standard: %v", why)
			}
			vols := csiVolumes(&pod.Spec)
			if len(vols) != len(pod.Spec.Volumes) || len(vols) == 0 {
				t.Errorf("the README's pod has volumes other than csi: %v", pod.Spec.Volumes)
			}
			for name, v := range vols {
				if v.Driver != driverName || v.ReadOnly == nil || !*v.ReadOnly {
					t.Errorf("the README's pod: volume %s: driver %q, readOnly %v", name, v.Driver, v.ReadOnly)
				}
				for k := range v.VolumeAttributes {
					if !strings.Contains(sec, "| `"+k+"`") && !strings.Contains(sec, ", `"+k+"` |") {
						t.Errorf("the README's pod uses the attribute %s, which its table does not list", k)
					}
				}
			}
			for _, c := range pod.Spec.Containers {
				if !pinnedImage(c.Image) {
					t.Errorf("the README's pod: image %q is not pinned", c.Image)
				}
				for _, m := range c.VolumeMounts {
					checkPropagation(t, "the README's pod: "+c.Name, m)
					if m.SubPath == "" {
						continue
					}
					secret := m.SubPath[:max(strings.LastIndex(m.SubPath, "/"), 0)]
					if v := vols[m.Name]; v == nil || !strings.Contains(","+v.VolumeAttributes["secrets"]+",", ","+secret+",") {
						t.Errorf("the README's pod: subPath %s is not a file of a secret its volume %s shows", m.SubPath, m.Name)
					}
				}
			}
		}
	}
	if pods != 1 {
		t.Errorf("%d pods in the README's Kubernetes section, want the example pod", pods)
	}

	// The trust policies, as the files have them.
	var files []any
	for _, f := range []string{"trust-policy-irsa.json", "trust-policy-pod-identity.json"} {
		var v any
		data, err := os.ReadFile(filepath.Join("example", "iam", f))
		if err != nil || json.Unmarshal(data, &v) != nil {
			t.Fatalf("%s: %v", f, err)
		}
		files = append(files, v)
	}
	blocks := fenced(sec, "json")
	if len(blocks) != len(files) {
		t.Fatalf("%d JSON blocks in the README's Kubernetes section, want the %d trust policies", len(blocks), len(files))
	}
	for i, b := range blocks {
		var v any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Errorf("JSON block %d: %v", i, err)
		} else if !reflect.DeepEqual(v, files[i]) {
			t.Errorf("JSON block %d of the README is not example/iam's trust policy as the file has it", i)
		}
	}
}
