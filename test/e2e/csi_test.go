package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
	"github.com/secretsfs/secretsfs/test/kubetoken"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// The roles of the node's pods, and the driver's own key.
const (
	k8sRoleApp   = "arn:aws:iam::123456789012:role/shop-app"    // shop/app: app/*
	k8sRoleAdmin = "arn:aws:iam::123456789012:role/ops-admin"   // ops/admin: admin/*
	k8sNodeKey   = "AKIDNODEDRIVER01"                           // the driver's environment: may read nothing
	k8sNodeUser  = "arn:aws:iam::123456789012:user/node-driver" // its identity in CallsByIdentity
)

// k8sRoleN is the role of service account team-N in namespace shop.
func k8sRoleN(n int) string { return fmt.Sprintf("arn:aws:iam::123456789012:role/team-%d", n) }

// k8sRoleTenant is the role of every service account tenant-* in
// namespace shop: each of them a node identity of its own.
const k8sRoleTenant = "arn:aws:iam::123456789012:role/tenant"

// k8sNode is a Kubernetes node as the CSI driver sees it: kubelet's
// directory, the built `secretsfs csi` binary on a unix socket, and AWS:
// the emulator with its IAM (tokens signed by the cluster's issuer, trust,
// per-role policies, verified signatures), its STS requests recorded.
type k8sNode struct {
	t       *testing.T
	bin     string // the secretsfs binary run as the driver
	emu     *emulator.Emulator
	sts     *emutest.STSRecorder
	clock   *emutest.LagClock
	url     string
	issuer  *kubetoken.Issuer
	kubelet string // kubelet's root directory (/var/lib/kubelet)
	socket  string
	driver  *testutil.Daemon
	node    csi.NodeClient
	conns   []*grpc.ClientConn // closed when the test ends, after the last unpublish
	// published are the volumes' ids by target, unpublished by the
	// running driver when the test ends, before it is stopped.
	published map[string]string
}

// k8sPod is a pod with an inline secretsfs volume.
type k8sPod struct {
	ns, sa, name, uid string
	role              string // empty: EKS Pod Identity
	volume            string // the volume's name in the pod spec
}

func newPod(ns, sa, name, role string) k8sPod {
	return k8sPod{ns: ns, sa: sa, name: name, uid: uuid.NewString(), role: role, volume: "secrets"}
}

// volumeID is kubelet's handle of an ephemeral inline volume:
// "csi-" + sha256(pod UID + volume name).
func (p k8sPod) volumeID() string {
	return fmt.Sprintf("csi-%x", sha256.Sum256([]byte(p.uid+p.volume)))
}

func newK8sNode(t *testing.T) *k8sNode {
	t.Helper()
	return newK8sNodeRunning(t, binary)
}

// newK8sNodeRunning is newK8sNode with bin as the driver.
func newK8sNodeRunning(t *testing.T, bin string) *k8sNode {
	t.Helper()
	testutil.RequireFUSE(t)
	issuer, err := kubetoken.NewIssuer("https://oidc.eks.us-east-1.amazonaws.com/id/E2E")
	if err != nil {
		t.Fatal(err)
	}
	n := &k8sNode{t: t, bin: bin, issuer: issuer, clock: &emutest.LagClock{}, kubelet: sharedDir(t), published: map[string]string{}}
	n.emu = emulator.New(emulator.WithClock(n.clock))
	trust := func(arn, ns, sa string, secrets ...string) emulator.Role {
		return emulator.Role{ARN: arn, TrustIssuer: issuer.URL(), TrustSubjects: []string{kubetoken.Subject(ns, sa)},
			Policy: emulator.Policy{Secrets: secrets, ListSecrets: true}}
	}
	roles := []emulator.Role{trust(k8sRoleApp, "shop", "app", "app/*"), trust(k8sRoleAdmin, "ops", "admin", "admin/*")}
	for i := range 5 {
		roles = append(roles, trust(k8sRoleN(i), "shop", fmt.Sprintf("team-%d", i), "app/*"))
	}
	roles = append(roles, trust(k8sRoleTenant, "shop", "tenant-*", "app/*"))
	if err := n.emu.SetIAM(emulator.IAM{
		Issuers:    []emulator.Issuer{{URL: issuer.URL(), JWKS: issuer.JWKS()}},
		Roles:      roles,
		AccessKeys: []emulator.AccessKey{{AccessKeyID: k8sNodeKey, SecretAccessKey: "node-secret", User: "node-driver"}},
	}); err != nil {
		t.Fatal(err)
	}
	n.sts = &emutest.STSRecorder{Emu: n.emu}
	srv := httptest.NewServer(n.sts)
	t.Cleanup(srv.Close)
	n.url = srv.URL
	n.socket = filepath.Join(t.TempDir(), "csi.sock")
	t.Cleanup(func() {
		for _, c := range n.conns {
			c.Close()
		}
	})
	n.start()
	return n
}

// sharedDir returns a new directory that is a shared mount, as kubelet's
// directory is on a node (systemd makes every mount shared): what is
// mounted below it propagates to the binds of it that containers hold.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s shared: %v", dir, err)
	}
	return dir
}

// k8sContainer is a container of a pod: a process in its own mount
// namespace holding binds of the pod's volume and of a subPath, made as the
// container runtime makes them for mountPropagation HostToContainer.
type k8sContainer struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startContainer starts a container binding each src onto its dst
// ("SRC", "DST", ...), and stops it (by pid) when the test ends.
func startContainer(t *testing.T, pairs ...string) *k8sContainer {
	t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "--", testBinary, "-test.run=^$")
	cmd.Env = append(os.Environ(), childModeEnv+"=container "+strings.Join(pairs, " "))
	cmd.Stderr = os.Stderr
	in, out := testutil.StartPiped(t, cmd)
	c := &k8sContainer{t: t, cmd: cmd, in: in, out: out}
	if line := c.line(); line != "ready" {
		t.Fatalf("the container did not start: %q", line)
	}
	return c
}

// stop ends the container, and with it its mount namespace.
func (c *k8sContainer) stop() {
	c.t.Helper()
	c.in.Close()
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("the container: %v", err)
	}
}

func (c *k8sContainer) line() string {
	c.t.Helper()
	if !c.out.Scan() {
		c.t.Fatalf("the container ended: %v", c.out.Err())
	}
	return c.out.Text()
}

// read reads path inside the container: its content, or the errno.
func (c *k8sContainer) read(path string) (string, error) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.in, "read %s\n", path); err != nil {
		c.t.Fatal(err)
	}
	line := c.line()
	if v, ok := strings.CutPrefix(line, "ok "); ok {
		b, err := hex.DecodeString(v)
		if err != nil {
			c.t.Fatal(err)
		}
		return string(b), nil
	}
	if v, ok := strings.CutPrefix(line, "errno "); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.t.Fatal(err)
		}
		return "", syscall.Errno(n)
	}
	c.t.Fatalf("the container answered %q", line)
	return "", nil
}

// start runs `secretsfs csi` on the node's socket (replacing the socket a
// killed driver left) and connects a CSI client to it, as kubelet does
// through the node-driver-registrar's registration. The process is
// stopped by pid (SIGTERM, which unmounts every volume) when the test
// ends.
func (n *k8sNode) start() {
	n.t.Helper()
	argv := []string{n.bin, "csi", "--endpoint", "unix://" + n.socket, "--node-id", "node-1",
		"--endpoint-url", n.url, "--sts-endpoint-url", n.url, "--pod-identity-agent-url", n.url + emulator.PodIdentityPath,
		"--region", "us-east-1", "--log-level", "debug"}
	env := testutil.FakeAWSEnv("AWS_ACCESS_KEY_ID="+k8sNodeKey, "AWS_SECRET_ACCESS_KEY=node-secret")
	listening := func(*testutil.Daemon) bool {
		c, err := net.Dial("unix", n.socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	n.driver = testutil.StartDaemon(n.t, "secretsfs csi", "", argv, env, listening)
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		n.t.Fatal(err)
	}
	n.conns = append(n.conns, conn)
	n.node = csi.NewNodeClient(conn)
	n.t.Cleanup(func() {
		for target, id := range n.published {
			n.unpublish(id, target)
		}
	})
}

// target makes the pod volume's directory as kubelet does
// (pods/UID/volumes/kubernetes.io~csi/NAME) and returns the target path
// below it, which the driver makes.
func (n *k8sNode) target(p k8sPod) string {
	n.t.Helper()
	dir := filepath.Join(n.kubelet, "pods", p.uid, "volumes", "kubernetes.io~csi", p.volume)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		n.t.Fatal(err)
	}
	return filepath.Join(dir, "mount")
}

// tokens is kubelet's csi.storage.k8s.io/serviceAccount.tokens for p
// (the CSIDriver's two audiences), expiring at exp.
func (n *k8sNode) tokens(p k8sPod, exp time.Time) string {
	n.t.Helper()
	s, err := n.issuer.ServiceAccountTokens(kubetoken.Claims{Namespace: p.ns, ServiceAccount: p.sa, PodName: p.name, PodUID: p.uid,
		IssuedAt: n.clock.Now().Add(-time.Minute), Expiry: exp}, kubetoken.AudienceSTS, kubetoken.AudiencePodIdentity)
	if err != nil {
		n.t.Fatal(err)
	}
	return s
}

// stsToken is the sts.amazonaws.com token of a tokens value.
func stsToken(t *testing.T, tokens string) string {
	t.Helper()
	var m map[string]kubetoken.TokenStatus
	if err := json.Unmarshal([]byte(tokens), &m); err != nil {
		t.Fatal(err)
	}
	return m[kubetoken.AudienceSTS].Token
}

// request is kubelet's NodePublishVolume of p's inline volume (the
// CSIDriver has podInfoOnMount, tokenRequests and fsGroupPolicy File).
func (n *k8sNode) request(p k8sPod, attrs map[string]string, exp time.Time) *csi.NodePublishVolumeRequest {
	vc := map[string]string{
		"csi.storage.k8s.io/ephemeral":             "true",
		"csi.storage.k8s.io/pod.name":              p.name,
		"csi.storage.k8s.io/pod.namespace":         p.ns,
		"csi.storage.k8s.io/pod.uid":               p.uid,
		"csi.storage.k8s.io/serviceAccount.name":   p.sa,
		"csi.storage.k8s.io/serviceAccount.tokens": n.tokens(p, exp),
	}
	if p.role != "" {
		vc["roleArn"] = p.role
	}
	for k, v := range attrs {
		vc[k] = v
	}
	return &csi.NodePublishVolumeRequest{
		VolumeId:   p.volumeID(),
		TargetPath: n.target(p),
		Readonly:   true,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: vc,
	}
}

// publish sends req: a first publish, or kubelet's republish.
func (n *k8sNode) publish(req *csi.NodePublishVolumeRequest) {
	n.t.Helper()
	n.published[req.TargetPath] = req.VolumeId
	if _, err := n.node.NodePublishVolume(context.Background(), req); err != nil {
		n.t.Fatalf("NodePublishVolume %s: %v\ndriver stderr:\n%s", req.VolumeId, err, n.driver.Stderr)
	}
}

func (n *k8sNode) unpublish(volumeID, target string) {
	n.t.Helper()
	if _, err := n.node.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target}); err != nil {
		n.t.Errorf("NodeUnpublishVolume %s: %v", volumeID, err)
	}
	delete(n.published, target)
}

// mountsUnder lists the lines of /proc/mounts whose mount point is below
// kubelet's directory.
func (n *k8sNode) mountsUnder() []string {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		n.t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], n.kubelet+"/") {
			out = append(out, line)
		}
	}
	return out
}

func (n *k8sNode) create(name, value string) {
	n.t.Helper()
	if _, err := n.emu.CreateSecret(emulator.Secret{Name: name, SecretString: &value}); err != nil {
		n.t.Fatal(err)
	}
}

// rssKiB is a process's resident set (VmRSS) in KiB.
func rssKiB(t *testing.T, pid int) int { return procStatus(t, pid, "VmRSS") }

// procStatus is a number of a process's /proc/PID/status: a size in KiB
// (VmRSS, RssAnon) or a count (Threads).
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("%s %q: %v", field, v, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestIssue14_30_DriverAsKubeletCallsIt runs the built `secretsfs csi` on a
// unix socket and calls it over gRPC as kubelet does for pods' ephemeral
// inline volumes, with the emulator's IAM as AWS: tokens signed by the
// cluster's issuer, roles trusting one service account each, per-role
// policies, verified signatures. The driver's own key may read nothing.
func TestIssue14_30_DriverAsKubeletCallsIt(t *testing.T) {
	t.Run("IdentitiesAreIsolated", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "value-app")
		n.create("admin/root", "value-admin")
		attrs := map[string]string{"mapping": testutil.MappingDoc("db", "app/db", "root", "admin/root")}
		for _, pc := range []struct {
			p                k8sPod
			own, want, other string
		}{
			{newPod("shop", "app", "web-1", k8sRoleApp), "db", "value-app", "root"},
			{newPod("ops", "admin", "admin-1", k8sRoleAdmin), "root", "value-admin", "db"},
		} {
			req := n.request(pc.p, attrs, time.Now().Add(time.Hour))
			n.publish(req)
			if got := mustRead(t, filepath.Join(req.TargetPath, pc.own)); got != pc.want {
				t.Errorf("%s reads %q from its own secret, want %q", pc.p.name, got, pc.want)
			}
			_, err := os.ReadFile(filepath.Join(req.TargetPath, pc.other))
			if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("%s reads the other identity's secret: %v, want EACCES or ENOENT", pc.p.name, err)
			}
		}
		calls := n.emu.CallsByIdentity()
		t.Logf("calls by identity: %v", calls)
		for _, who := range []string{k8sRoleApp, k8sRoleAdmin} {
			if calls[who][emulator.OpAssumeRoleWithWebIdentity] == 0 || len(calls[who]) < 2 {
				t.Errorf("%s: calls %v, want its AssumeRoleWithWebIdentity and reads", who, calls[who])
			}
		}
		for who := range calls {
			if who != k8sRoleApp && who != k8sRoleAdmin {
				t.Errorf("calls made as %s (the node's key is %s): %v", who, k8sNodeUser, calls[who])
			}
		}
	})

	t.Run("SubPathFollowsARotation", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "v1")
		p := newPod("shop", "app", "web-1", k8sRoleApp)
		req := n.request(p, map[string]string{"mapping": testutil.MappingDoc("db", "app/db"), "refreshInterval": "1s"}, time.Now().Add(time.Hour))
		n.publish(req)
		// kubelet binds a subPath into the container below
		// pods/UID/volume-subpaths/VOLUME/CONTAINER/INDEX.
		dir := filepath.Join(n.kubelet, "pods", p.uid, "volume-subpaths", p.volume, "app", "0")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		sub := testutil.BindFile(t, filepath.Join(req.TargetPath, "db"), filepath.Join(dir, "db"))
		if got := mustRead(t, sub); got != "v1" {
			t.Fatalf("the subPath reads %q, want v1", got)
		}
		if _, err := n.emu.PutSecretValue("app/db", emulator.Version{SecretString: ptr("v2")}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "the rotation through the subPath bind", func() bool {
			s, err := read(sub)
			return err == nil && s == "v2"
		})
	})

	t.Run("RepublishKeepsTheMountAndSendsTheNewToken", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "value-db")
		n.clock.SetCredentialTTL(3 * time.Second) // STS is asked again soon
		p := newPod("shop", "app", "web-1", k8sRoleApp)
		attrs := map[string]string{"mapping": testutil.MappingDoc("db", "app/db"), "refreshInterval": "1s"}
		req := n.request(p, attrs, time.Now().Add(time.Hour))
		n.publish(req)
		file := filepath.Join(req.TargetPath, "db")
		if got := mustRead(t, file); got != "value-db" {
			t.Fatalf("read %q", got)
		}
		var st0 syscall.Stat_t
		if err := syscall.Stat(file, &st0); err != nil {
			t.Fatal(err)
		}
		id0 := testutil.MountID(req.TargetPath)

		re := n.request(p, attrs, time.Now().Add(2*time.Hour)) // requiresRepublish: a fresh token
		fresh := stsToken(t, re.VolumeContext["csi.storage.k8s.io/serviceAccount.tokens"])
		before := len(n.sts.Calls())
		n.publish(re)
		if id := testutil.MountID(req.TargetPath); id != id0 {
			t.Fatalf("the republish remounted the target: mount id %s -> %s", id0, id)
		}
		eventually(t, 20*time.Second, "an STS call after the republish", func() bool { return len(n.sts.Calls()) > before })
		if next := n.sts.Calls()[before]; next.Token != fresh || next.Role != k8sRoleApp {
			t.Fatalf("the first STS call after the republish was for %s with another token than the republished one", next.Role)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(file, &st); err != nil || st.Ino != st0.Ino {
			t.Fatalf("after the republish: %v, inode %d -> %d", err, st0.Ino, st.Ino)
		}
		if got := mustRead(t, file); got != "value-db" {
			t.Fatalf("after the republish read %q", got)
		}
	})

	t.Run("ExpiredTokenStopsCredentialsValuesFollowMaxStale", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "value-db")
		n.clock.SetCredentialTTL(2 * time.Second) // the SDK asks for credentials again soon
		p := newPod("shop", "app", "web-1", k8sRoleApp)
		attrs := map[string]string{"mapping": testutil.MappingDoc("db", "app/db"), "refreshInterval": "1s", "maxStale": "8s"}
		exp := time.Now().Add(6 * time.Second).Truncate(time.Second)
		req := n.request(p, attrs, exp)
		n.publish(req)
		file := filepath.Join(req.TargetPath, "db")
		if got := mustRead(t, file); got != "value-db" {
			t.Fatalf("read %q", got)
		}
		// The token has expired (and no republish comes): from then on the
		// driver asks STS nothing, and serves the cached value.
		eventually(t, 20*time.Second, "the token's expiry", func() bool { return time.Now().After(exp.Add(500 * time.Millisecond)) })
		stsAtExpiry := len(n.sts.Calls())
		if got, err := read(file); err != nil || got != "value-db" {
			t.Fatalf("right after the token expired: %q, %v; want the cached value", got, err)
		}
		// The last credentials STS gave expire; refreshes fail; maxStale
		// after the last good one, reads fail with EIO.
		var err error
		eventually(t, 40*time.Second, "EIO once the value is older than maxStale", func() bool {
			_, err = read(file)
			return err != nil
		})
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("beyond maxStale: %v, want EIO", err)
		}
		if calls := n.sts.Calls(); len(calls) != stsAtExpiry {
			t.Fatalf("%d STS calls after the token expired, want none", len(calls)-stsAtExpiry)
		}
		t.Logf("EIO %v after the token expired; STS calls: %d, all before", time.Since(exp).Round(100*time.Millisecond), stsAtExpiry)
		n.publish(n.request(p, attrs, time.Now().Add(time.Hour))) // kubelet's republish
		eventually(t, 20*time.Second, "the value served again after a republish", func() bool {
			s, err := read(file)
			return err == nil && s == "value-db"
		})
	})

	t.Run("UnpublishLeavesNoMount", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "value-db")
		var reqs []*csi.NodePublishVolumeRequest
		for i := range 2 {
			req := n.request(newPod("shop", "app", fmt.Sprintf("web-%d", i), k8sRoleApp), map[string]string{"secrets": "app/db"}, time.Now().Add(time.Hour))
			n.publish(req)
			reqs = append(reqs, req)
		}
		if m := n.mountsUnder(); len(m) != 2 {
			t.Fatalf("/proc/mounts below kubelet's directory: %q, want the 2 volumes", m)
		}
		for _, req := range reqs {
			n.unpublish(req.VolumeId, req.TargetPath)
			if _, err := os.Stat(req.TargetPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the target after unpublish: %v, want removed", err)
			}
		}
		if m := n.mountsUnder(); len(m) != 0 {
			t.Fatalf("/proc/mounts after unpublish: %q", m)
		}
	})

	// A driver that restarts (kill -9 as a crash, SIGTERM as an upgrade)
	// serves every volume again at its next republish, to the node's
	// target path and to the container that bound the volume and a
	// subPath of it before the restart, without the pod restarting.
	t.Run("RestartRepublishServesTheRunningContainerAgain", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "v1")
		p := newPod("shop", "app", "web-1", k8sRoleApp)
		attrs := map[string]string{"mapping": testutil.MappingDoc("db", "app/db"), "refreshInterval": "1s"}
		req := n.request(p, attrs, time.Now().Add(time.Hour))
		n.publish(req)
		// kubelet binds the subPath below pods/UID/volume-subpaths, then
		// the runtime binds it and the volume into the container.
		subDir := filepath.Join(n.kubelet, "pods", p.uid, "volume-subpaths", p.volume, "app", "0")
		if err := os.MkdirAll(subDir, 0o750); err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(subDir, "db")
		if err := os.WriteFile(sub, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(filepath.Join(req.TargetPath, "db"), sub, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		// kubelet's cleanup of a subPath when the container goes: unmount
		// until it is no longer a mount point (its reconciler retries).
		cleanSubPath := func() {
			for i := 0; i < 8 && testutil.MountType(sub) != ""; i++ {
				if err := unix.Unmount(sub, unix.MNT_DETACH); err != nil {
					t.Errorf("unmount the subPath: %v", err)
				}
			}
		}
		t.Cleanup(cleanSubPath)
		ctr := t.TempDir()
		vol, file := filepath.Join(ctr, "secrets"), filepath.Join(ctr, "db")
		c := startContainer(t, req.TargetPath, vol, sub, file)
		want := func(what, v string) {
			t.Helper()
			for _, path := range []string{filepath.Join(vol, "db"), file} {
				if got, err := c.read(path); err != nil || got != v {
					t.Fatalf("%s: the container reads %s: %q, %v; want %q", what, path, got, err, v)
				}
			}
		}
		want("before the restart", "v1")

		for i, stop := range []func(){func() { n.driver.Kill9() }, func() { n.driver.Stop(t) }} {
			stop()
			if _, err := c.read(file); !errors.Is(err, syscall.ENOTCONN) {
				t.Fatalf("restart %d: the container reads the subPath with no driver: %v, want ENOTCONN", i, err)
			}
			n.start()
			n.publish(n.request(p, attrs, time.Now().Add(time.Hour))) // kubelet's periodic republish
			if got, err := read(filepath.Join(req.TargetPath, "db")); err != nil || got != fmt.Sprint("v", i+1) {
				t.Fatalf("restart %d: the node reads %q, %v", i, got, err)
			}
			want(fmt.Sprintf("restart %d", i), fmt.Sprint("v", i+1))
			if f, err := os.OpenFile(sub, os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
				f.Close()
				t.Fatalf("restart %d: open the subPath for writing: %v, want EROFS", i, err)
			}
			next := fmt.Sprint("v", i+2)
			if _, err := n.emu.PutSecretValue("app/db", emulator.Version{SecretString: &next}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "the container sees the rotation after the restart", func() bool {
				a, err1 := c.read(filepath.Join(vol, "db"))
				b, err2 := c.read(file)
				return err1 == nil && err2 == nil && a == next && b == next
			})
		}

		// The pod goes: the container, then kubelet's cleanup of the
		// subPath, then the unpublish, which leaves no mount behind.
		c.stop()
		cleanSubPath()
		n.unpublish(req.VolumeId, req.TargetPath)
		if m := n.mountsUnder(); len(m) != 0 {
			t.Fatalf("/proc/mounts below kubelet's directory after unpublish: %q", m)
		}
	})

	t.Run("FiftyVolumesOfFiveIdentities", func(t *testing.T) {
		n := newK8sNode(t)
		n.create("app/db", "value-db")
		attrs := map[string]string{"mapping": testutil.MappingDoc("db", "app/db")}
		pid := n.driver.Cmd.Process.Pid
		publish := func(from, to int) {
			for i := from; i < to; i++ {
				p := newPod("shop", fmt.Sprintf("team-%d", i%5), fmt.Sprintf("web-%d", i), k8sRoleN(i%5))
				req := n.request(p, attrs, time.Now().Add(time.Hour))
				n.publish(req)
				if got := mustRead(t, filepath.Join(req.TargetPath, "db")); got != "value-db" {
					t.Fatalf("%s reads %q", p.name, got)
				}
			}
		}
		rss0 := rssKiB(t, pid)
		publish(0, 5)
		rss5 := rssKiB(t, pid)
		publish(5, 50)
		rss50 := rssKiB(t, pid)
		perVolume := float64(rss50-rss5) / 45
		t.Logf("driver RSS: %d KiB idle, %d KiB with 5 volumes (5 identities), %d KiB with 50; %.0f KiB per added volume (a -race build)",
			rss0, rss5, rss50, perVolume)
		if m := n.mountsUnder(); len(m) != 50 {
			t.Fatalf("%d mounts below kubelet's directory, want 50", len(m))
		}
		calls := n.emu.CallsByIdentity()
		t.Logf("calls by identity: %v; STS requests: %d", calls, len(n.sts.Calls()))
		if len(n.sts.Calls()) != 5 {
			t.Errorf("%d STS requests for 5 identities, want 5", len(n.sts.Calls()))
		}
		for i := range 5 {
			c := calls[k8sRoleN(i)]
			if c[emulator.OpAssumeRoleWithWebIdentity] != 1 || c[emulator.OpGetSecretValue]+c[emulator.OpBatchGetSecretValue] != 1 {
				t.Errorf("%s: %v; want one AssumeRoleWithWebIdentity and one value call (one cache for its 10 volumes)", k8sRoleN(i), c)
			}
		}
		if len(calls) != 5 {
			t.Errorf("calls made by %d identities, want the 5 roles only", len(calls))
		}
		// 45 more volumes of the same 5 identities share the 5 caches: they
		// add mounts, not caches. The bound is generous (ten times the
		// volumes, at most five times the memory), against a leak or a
		// cache per volume, not a measure of this machine.
		if rss50 > 5*rss5 {
			t.Errorf("RSS %d KiB with 50 volumes, over 5 times the %d KiB with 5", rss50, rss5)
		}
	})
}

func ptr[T any](v T) *T { return &v }
