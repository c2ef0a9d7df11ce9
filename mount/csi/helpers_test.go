package csi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
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

// aws is the loopback backend of the driver's tests: the Secrets Manager
// emulator, an STS answering AssumeRoleWithWebIdentity and an EKS Pod
// Identity agent, on one listener as the contract's emulator will be. STS
// and the agent are stand-ins until the emulator has its own (helper C):
// they check nothing of the token beyond its audience and expiry, and
// record what they were given. Every Secrets Manager request's access key
// is recorded, so that a test can tell whose credentials signed it.
type awsStub struct {
	emu *emulator.Emulator
	srv *httptest.Server
	// credTTL is how long the credentials STS and the agent give last.
	credTTL time.Duration

	mu       sync.Mutex
	roles    map[string]string // access key id -> role ARN or "pod-identity:NS/SA"; guarded by mu
	smKeys   []string          // access key ids of the Secrets Manager requests; guarded by mu
	stsCalls []stsCall         // guarded by mu
	agent    []string          // subjects of the tokens the agent got; guarded by mu
	refuse   bool              // STS and the agent answer every request with an error; guarded by mu
}

type stsCall struct{ role, token string }

func newAWS(t *testing.T) *awsStub {
	t.Helper()
	emutest.IsolateAWS(t)
	a := &awsStub{emu: emulator.New(), credTTL: time.Hour, roles: map[string]string{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// keyOf finds the access key id in a SigV4 Authorization header.
var keyOf = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func (a *awsStub) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		if m := keyOf.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			a.mu.Lock()
			a.smKeys = append(a.smKeys, m[1])
			a.mu.Unlock()
		}
		a.emu.ServeHTTP(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/credentials":
		a.podIdentity(w, r)
	case r.Method == http.MethodPost:
		a.sts(w, r)
	default:
		http.NotFound(w, r)
	}
}

// sts answers AssumeRoleWithWebIdentity as STS does (awsQuery, XML).
func (a *awsStub) sts(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRoleWithWebIdentity" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	role, tok := r.Form.Get("RoleArn"), r.Form.Get("WebIdentityToken")
	a.mu.Lock()
	a.stsCalls = append(a.stsCalls, stsCall{role: role, token: tok})
	refuse := a.refuse
	a.mu.Unlock()
	claims, err := claimsOf(tok)
	if refuse || err != nil || !claims.hasAudience(cache.AudienceSTS) || time.Now().After(claims.exp()) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>refused</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
		return
	}
	key := a.issue(role)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>secret-%s</SecretAccessKey><SessionToken>session-%s</SessionToken><Expiration>%s</Expiration></Credentials>
    <SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn><AssumedRoleId>AROATEST:s</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, key, key, key, time.Now().Add(a.credTTL).UTC().Format(time.RFC3339), claims.Sub)
}

// podIdentity answers the EKS Pod Identity agent's credentials request.
func (a *awsStub) podIdentity(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("Authorization")
	claims, err := claimsOf(tok)
	a.mu.Lock()
	refuse := a.refuse
	if err == nil {
		a.agent = append(a.agent, claims.Sub)
	}
	a.mu.Unlock()
	if refuse || err != nil || !claims.hasAudience(cache.AudiencePodIdentity) || time.Now().After(claims.exp()) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"InvalidToken","message":"refused"}`)
		return
	}
	key := a.issue("pod-identity:" + strings.TrimPrefix(claims.Sub, "system:serviceaccount:"))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"AccessKeyId": key, "SecretAccessKey": "secret-" + key, "Token": "session-" + key,
		"AccountId": "123456789012", "Expiration": time.Now().Add(a.credTTL).UTC().Format(time.RFC3339),
	})
}

// issue makes an access key id for role.
func (a *awsStub) issue(role string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := fmt.Sprintf("ASIATEST%08d", len(a.roles)+1)
	a.roles[key] = role
	return key
}

// signers returns whom the Secrets Manager requests were signed as: a role
// (or pod-identity:NS/SA) for a key STS or the agent gave, else the key.
func (a *awsStub) signers() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, k := range a.smKeys {
		if r, ok := a.roles[k]; ok {
			k = r
		}
		out[k]++
	}
	return out
}

func (a *awsStub) stsTokens() []stsCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]stsCall(nil), a.stsCalls...)
}

func (a *awsStub) setRefuse(v bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refuse = v
}

func (a *awsStub) create(t *testing.T, name, value string) {
	t.Helper()
	if _, err := a.emu.CreateSecret(emulator.Secret{Name: name, SecretString: &value}); err != nil {
		t.Fatal(err)
	}
}

// claims are the JWT claims the stand-ins read.
type claims struct {
	Sub string   `json:"sub"`
	Aud []string `json:"aud"`
	Exp int64    `json:"exp"`
}

func (c claims) hasAudience(aud string) bool { return slices.Contains(c.Aud, aud) }

func (c claims) exp() time.Time { return time.Unix(c.Exp, 0) }

func claimsOf(jwt string) (claims, error) {
	var c claims
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	err = json.Unmarshal(b, &c)
	return c, err
}

// serial numbers tokens so that every token a test makes differs.
type serial struct {
	mu sync.Mutex
	n  int
}

func (s *serial) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.n
}

// pod is a pod asking for a volume.
type pod struct {
	ns, sa, name string
	role         string // empty: Pod Identity
	gid          string // fsGroup; empty: none
}

// jwt makes a service-account token as kube-apiserver does (claims only:
// the signature is a placeholder, which the stand-ins do not check).
func jwt(p pod, aud string, exp time.Time, n int) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "kid": "test"}) + "." + enc(map[string]any{
		"iss": "https://kubernetes.default.svc", "sub": subject(p.ns, p.sa), "aud": []string{aud},
		"exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix(), "nbf": exp.Add(-time.Hour).Unix(), "jti": fmt.Sprint(n),
		"kubernetes.io": map[string]any{"namespace": p.ns, "serviceaccount": map[string]string{"name": p.sa, "uid": "sa-uid"},
			"pod": map[string]string{"name": p.name, "uid": "pod-uid-" + p.name}},
	}) + ".c2lnbmF0dXJl"
}

// kubeletTokens is csi.storage.k8s.io/serviceAccount.tokens for p, both
// audiences, expiring at exp.
func kubeletTokens(p pod, exp time.Time, n int) string {
	m := map[string]map[string]string{}
	for _, aud := range []string{cache.AudienceSTS, cache.AudiencePodIdentity} {
		m[aud] = map[string]string{"token": jwt(p, aud, exp, n), "expirationTimestamp": exp.UTC().Format(time.RFC3339)}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// rig is a driver under test with its backend and a client over its socket.
type rig struct {
	t      *testing.T
	aws    *awsStub
	clock  *cachetest.Clock
	driver *Driver
	node   csi.NodeClient
	ident  csi.IdentityClient
	socket string
	dir    string // where the pods' directories go
	tokens serial
}

// newRig starts a driver on a unix socket, backed by a (the Secrets Manager
// emulator behind the STS and agent stand-ins), and stops it in t.Cleanup
// (which unmounts every volume).
func newRig(t *testing.T, a *awsStub) *rig {
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
		checkNoMounts(t, r.dir)
	})
	r.node, r.ident = dial(t, r.socket)
	return r
}

// rigWith is a rig whose backend holds one secret.
func rigWith(t *testing.T, name, value string) (*awsStub, *rig) {
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
	cfg.PodIdentityAgentURL = r.aws.srv.URL + "/v1/credentials"
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
		keyServiceAccount: p.sa, keyTokens: kubeletTokens(p, exp, r.tokens.next()),
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

// mappingDoc is a mapping attribute putting each secret at the path before it.
func mappingDoc(pathSecret ...string) string {
	var b strings.Builder
	b.WriteString("files:\n")
	for i := 0; i+1 < len(pathSecret); i += 2 {
		fmt.Fprintf(&b, "  - path: %s\n    secret: %s\n", pathSecret[i], pathSecret[i+1])
	}
	return b.String()
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

// mountID is the id of the mount on top of dir in mountinfo ("" if none).
func mountID(dir string) string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	id := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir { // test paths need no unescaping
			id = f[0]
		}
	}
	return id
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
