package csi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
	"github.com/secretsfs/secretsfs/test/kubetoken"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// childEnv, when set in the environment, makes the test binary run the
// driver (csi.Run) with the JSON Config it holds instead of the tests: the
// restart tests kill that process with SIGKILL.
const childEnv = "SECRETSFS_CSI_TEST_DRIVER"

func TestMain(m *testing.M) {
	if js := os.Getenv(childEnv); js != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(js), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "child driver config:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := Run(ctx, cfg, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// t0 is the fake clocks' start: the real time, so that the tokens' expiry
// (on the fake clock) and the credentials' (on the SDK's real clock) agree.
func t0() time.Time { return time.Now().Truncate(time.Second) }

// backend is the loopback AWS of the driver's tests: the emulator with its
// IAM (verified SigV4, STS AssumeRoleWithWebIdentity and the EKS Pod
// Identity agent's endpoint checking signed service-account tokens, trust
// and per-role policies) on one listener, recording the tokens STS was
// given, and the test issuer that signs the pods' tokens.
type backend struct {
	emu    *emulator.Emulator
	sts    *emutest.STSRecorder
	srv    *httptest.Server
	issuer *kubetoken.Issuer
	clock  *emutest.LagClock
}

// The roles the tests' pods assume, and the driver's own key.
const (
	roleA     = "arn:aws:iam::123456789012:role/app-a"
	roleAdmin = "arn:aws:iam::123456789012:role/admin"
	roleB     = "arn:aws:iam::123456789012:role/app-b" // shop/app-b's, through EKS Pod Identity
	// nodeKey is the driver's own access key: valid, may read nothing.
	nodeKey = "AKIDDRIVERNODE01"
)

// roleN is the role of service account app-N in namespace shop.
func roleN(n int) string { return fmt.Sprintf("arn:aws:iam::123456789012:role/app-%d", n) }

// newAWS starts the emulator with the tests' IAM: roleA (app/*) trusted by
// shop/app-a and sanity/app, roleAdmin (admin/*) by ops/admin, roles app-0
// to app-4 (app/*) by shop/app-N, roleB (app/*) associated with shop/app-b
// for Pod Identity; and the driver's environment holds nodeKey.
func newAWS(t *testing.T) *backend {
	t.Helper()
	emutest.IsolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", nodeKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "node-secret")
	issuer, err := kubetoken.NewIssuer("https://oidc.example.test/cluster")
	if err != nil {
		t.Fatal(err)
	}
	a := &backend{issuer: issuer, clock: &emutest.LagClock{}}
	a.emu = emulator.New(emulator.WithClock(a.clock))
	reader := emulator.Policy{Secrets: []string{"app/*"}, ListSecrets: true}
	trust := func(arn string, p emulator.Policy, subjects ...string) emulator.Role {
		return emulator.Role{ARN: arn, TrustIssuer: issuer.URL(), TrustSubjects: subjects, Policy: p}
	}
	roles := []emulator.Role{
		trust(roleA, reader, kubetoken.Subject("shop", "app-a"), kubetoken.Subject("sanity", "app")),
		trust(roleAdmin, emulator.Policy{Secrets: []string{"admin/*"}, ListSecrets: true}, kubetoken.Subject("ops", "admin")),
		{ARN: roleB, Policy: reader},
	}
	for n := range 5 {
		roles = append(roles, trust(roleN(n), reader, kubetoken.Subject("shop", fmt.Sprintf("app-%d", n))))
	}
	if err := a.emu.SetIAM(emulator.IAM{
		Issuers:                 []emulator.Issuer{{URL: issuer.URL(), JWKS: issuer.JWKS()}},
		Roles:                   roles,
		PodIdentityAssociations: []emulator.PodIdentityAssociation{{Namespace: "shop", ServiceAccount: "app-b", RoleARN: roleB}},
		AccessKeys:              []emulator.AccessKey{{AccessKeyID: nodeKey, SecretAccessKey: "node-secret", User: "node"}},
	}); err != nil {
		t.Fatal(err)
	}
	a.sts = &emutest.STSRecorder{Emu: a.emu}
	a.srv = httptest.NewServer(a.sts)
	t.Cleanup(a.srv.Close)
	return a
}

// signers returns, by identity, how many Secrets Manager calls were signed
// as it (the role ARN of STS's or the agent's credentials, the user ARN of
// a static key), as the emulator verified them.
func (a *backend) signers() map[string]int {
	out := map[string]int{}
	for who, ops := range a.emu.CallsByIdentity() {
		for op, n := range ops {
			if op != emulator.OpAssumeRoleWithWebIdentity && op != emulator.OpPodIdentityCredentials {
				out[who] += n
			}
		}
	}
	return out
}

func (a *backend) create(t *testing.T, name, value string) {
	t.Helper()
	if _, err := a.emu.CreateSecret(emulator.Secret{Name: name, SecretString: &value}); err != nil {
		t.Fatal(err)
	}
}

// tokens is csi.storage.k8s.io/serviceAccount.tokens for p as kubelet
// passes it: tokens for both audiences signed by the test issuer, issued
// before the emulator's now, expiring at exp.
func (a *backend) tokens(t *testing.T, p pod, exp time.Time) string {
	t.Helper()
	s, err := a.issuer.ServiceAccountTokens(kubetoken.Claims{
		Namespace: p.ns, ServiceAccount: p.sa, PodName: p.name, PodUID: "pod-uid-" + p.name,
		IssuedAt: a.clock.Now().Add(-time.Hour), Expiry: exp,
	}, kubetoken.AudienceSTS, kubetoken.AudiencePodIdentity)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pod is a pod asking for a volume.
type pod struct {
	ns, sa, name string
	role         string // empty: Pod Identity
	gid          string // fsGroup; empty: none
}

// rig is a driver under test with its backend and a client over its socket.
type rig struct {
	t      *testing.T
	aws    *backend
	clock  *cachetest.Clock
	driver *Driver
	node   csi.NodeClient
	ident  csi.IdentityClient
	socket string
	dir    string // where the pods' directories go
}

// newRig starts a driver on a unix socket, backed by a, and stops it in
// t.Cleanup, unmounting every volume.
func newRig(t *testing.T, a *backend) *rig {
	t.Helper()
	testutil.RequireFUSE(t)
	r := &rig{t: t, aws: a, clock: cachetest.NewClock(t0()), dir: t.TempDir()}
	r.socket = filepath.Join(t.TempDir(), "csi.sock")
	r.driver = NewDriver(r.config(), testLog(), r.clock)
	l, err := Listen("unix://" + r.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.driver.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		r.driver.Shutdown() // Serve leaves the volumes mounted
		checkNoMounts(t, r.dir)
	})
	r.node, r.ident = dial(t, r.socket)
	return r
}

// rigWith is a rig whose backend holds one secret.
func rigWith(t *testing.T, name, value string) (*backend, *rig) {
	t.Helper()
	a := newAWS(t)
	a.create(t, name, value)
	return a, newRig(t, a)
}

// child starts another driver, in a child process, against the rig's
// backend, on a socket called name, and dials it.
func (r *rig) child(name string) (*childDriver, csi.NodeClient) {
	r.t.Helper()
	cfg := r.config()
	cfg.Endpoint = "unix://" + filepath.Join(r.t.TempDir(), name+".sock")
	c := startChild(r.t, cfg)
	node, _ := dial(r.t, strings.TrimPrefix(cfg.Endpoint, "unix://"))
	return c, node
}

// config is the driver's configuration against the rig's backend.
func (r *rig) config() Config {
	cfg := DefaultConfig()
	cfg.Endpoint = "unix://" + r.socket
	cfg.NodeID = "node-1"
	cfg.Region = r.aws.emu.Region()
	cfg.EndpointURL = r.aws.srv.URL
	cfg.STSEndpointURL = r.aws.srv.URL
	cfg.PodIdentityAgentURL = r.aws.srv.URL + emulator.PodIdentityPath
	cfg.Version = "test"
	return cfg
}

// dial connects a CSI client to socket, closed in t.Cleanup.
func dial(t *testing.T, socket string) (csi.NodeClient, csi.IdentityClient) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewNodeClient(conn), csi.NewIdentityClient(conn)
}

func testLog() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SECRETSFS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// target makes the pod volume's parent directory as kubelet does and
// returns the target path below it, which the driver makes.
func (r *rig) target(volume string) string {
	r.t.Helper()
	parent := filepath.Join(r.dir, "pods", volume, "volumes", "kubernetes.io~csi", "secrets")
	if err := os.MkdirAll(parent, 0o750); err != nil {
		r.t.Fatal(err)
	}
	return filepath.Join(parent, "mount")
}

// request is kubelet's NodePublishVolume for p's inline volume with attrs,
// its tokens expiring at exp.
func (r *rig) request(volumeID, target string, p pod, attrs map[string]string, exp time.Time) *csi.NodePublishVolumeRequest {
	vc := map[string]string{
		keyEphemeral: "true", keyPodName: p.name, keyPodNamespace: p.ns, keyPodUID: "pod-uid-" + p.name,
		keyServiceAccount: p.sa, keyTokens: r.aws.tokens(r.t, p, exp),
	}
	if p.role != "" {
		vc[attrRoleARN] = p.role
	}
	for k, v := range attrs {
		vc[k] = v
	}
	return &csi.NodePublishVolumeRequest{
		VolumeId:   volumeID,
		TargetPath: target,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{VolumeMountGroup: p.gid}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: vc,
	}
}

// publish publishes and fails the test on an error.
func (r *rig) publish(req *csi.NodePublishVolumeRequest) {
	r.t.Helper()
	if _, err := r.node.NodePublishVolume(context.Background(), req); err != nil {
		r.t.Fatalf("NodePublishVolume %s: %v", req.VolumeId, err)
	}
}

func (r *rig) unpublish(volumeID, target string) {
	r.t.Helper()
	if _, err := r.node.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target}); err != nil {
		r.t.Fatalf("NodeUnpublishVolume %s: %v", volumeID, err)
	}
}

// read reads a file, failing the test on an error.
func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// code is a gRPC error's code and message.
func code(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	return st.Code(), st.Message()
}

// mountsUnder lists the mounts below dir in this process's mountinfo.
func mountsUnder(dir string) []string {
	var out []string
	for _, m := range testutil.MountPoints(func(string) bool { return true }) {
		if strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

// checkNoMounts reports, and detaches, any mount left below dir.
func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	for _, m := range mountsUnder(dir) {
		t.Errorf("left mounted: %s; detaching it", m)
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("umount -l %s: %v", m, err)
		}
	}
}

// childDriver runs the driver in a child process (the test binary, see
// TestMain) on socket with cfg; it is stopped by pid in t.Cleanup if still
// running.
type childDriver struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *testutil.SyncBuffer
}

func startChild(t *testing.T, cfg Config) *childDriver {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &childDriver{exited: make(chan struct{}), stderr: &testutil.SyncBuffer{}}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	c.cmd.Stdout, c.cmd.Stderr = io.Discard, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(20 * time.Second):
				t.Errorf("the child driver (pid %d) did not stop on SIGTERM; killing it", c.cmd.Process.Pid)
				c.kill9()
			}
		}
	})
	path, _ := socketPath(cfg.Endpoint)
	testutil.Eventually(t, 20*time.Second, "the child driver's socket", func() bool {
		conn, err := net.Dial("unix", path)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return c
}

// kill9 kills the child without letting it unmount, and waits for it.
func (c *childDriver) kill9() {
	c.cmd.Process.Kill()
	<-c.exited
}

// emulatorVersion is a new string version of a secret (AWSCURRENT).
func emulatorVersion(s string) emulator.Version { return emulator.Version{SecretString: &s} }
