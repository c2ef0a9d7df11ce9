package e2e

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// Every secret value below carries a SECRETn marker, so that the logs can be
// searched for any of them.
func dbValue(pw string) string {
	q, _ := json.Marshal(pw)
	return `{"username":"app-SECRET0","password":` + string(q) + `,"host":"db.internal","port":5432,` +
		`"db":{"primary":{"password":"nested-SECRET2"}},"cfg.name":"dotted-SECRET3"}`
}

const (
	pwOne   = "pw-one-SECRET1"
	pwTwo   = `pw:two\SECRET7`
	pwThree = "pw-three-SECRET8"
	envJSON = `{"DB_USER":"app-SECRET0","DB_PASS":"it's $SECRET4"}`
	certPEM = "-----BEGIN CERTIFICATE-----\ncert-SECRET5\n-----END CERTIFICATE-----\n"
	csiJSON = `{"username":"memeuser-SECRET9","password":"hunter2-SECRET6"}`
)

// secretMarkers are the values (and parts of values) no log line may hold.
var secretMarkers = []string{"SECRET0", "SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", "SECRET6", "SECRET7", "SECRET8", "SECRET9", "hunter2"}

const mappingYAML = `# a mapping file as an operator would write it
refresh_interval: 1s
files:
  - path: app/db/password
    secret: prod/db
    key: password
    mode: "0440"
    uid: 1234
    gid: 5678
  - path: app/db/previous-password
    secret: prod/db
    stage: AWSPREVIOUS
    key: password
  - path: app/db/first-version
    secret: prod/db
    version_id: {{V1}}
  - path: app/db/nested
    secret: prod/db
    key: db.primary.password
  - path: app/db/dotted
    secret: prod/db
    key: '"cfg.name"'
  - path: app/db/by-arn
    secret: {{ARN}}
    key: username
  - path: formats/raw
    secret: prod/env
  - path: formats/app.env
    secret: prod/env
    format: env
  - path: formats/app.properties
    secret: prod/env
    format: properties
  - path: formats/app.yaml
    secret: prod/env
    format: yaml
  - path: formats/app.json
    secret: prod/env
    format: json
  - path: formats/cert.pem
    secret: prod/cert
    format: base64
  - path: legacy/settings.ini
    mode: "0400"
    template: |
      ; rendered by secretsfs
      [database]
      host = {{ key "prod/db" "host" }}
      port = {{ key "prod/db" "port" }}
      user = {{ key "prod/db" "username" }}
      password = {{ key "prod/db" "password" }}
      previous_password = {{ keyStage "prod/db" "AWSPREVIOUS" "password" }}
  - path: legacy/.pgpass
    mode: "0600"
    template_file: pgpass.tmpl
  - path: broken.ini
    template: |
      [database]
      password = {{ key "prod/db" "no_such_key" }}
  - path: missing
    secret: no/such/secret
# The Secrets Store CSI driver's AWS provider, as documented.
objects: |
  - objectName: "MySecret"
    objectType: "secretsmanager"
    jmesPath:
      - path: "username"
        objectAlias: "MySecretUsername"
      - path: "password"
        objectAlias: "MySecretPassword"
`

const pgpassTmpl = `{{ key "prod/db" "host" }}:{{ key "prod/db" "port" }}:app:{{ key "prod/db" "username" | pgpass }}:{{ key "prod/db" "password" | pgpass }}` + "\n"

func settingsINI(pw, prev string) string {
	return "; rendered by secretsfs\n[database]\nhost = db.internal\nport = 5432\nuser = app-SECRET0\npassword = " + pw + "\nprevious_password = " + prev + "\n"
}

// mappingWorld creates the secrets and writes the mapping file; it returns
// the file's path.
func mappingWorld(t *testing.T, w *world) string {
	t.Helper()
	v1 := w.createString("prod/db", dbValue(pwOne))
	w.put("prod/db", dbValue(pwTwo))
	w.createString("prod/env", envJSON)
	w.createString("prod/cert", base64.StdEncoding.EncodeToString([]byte(certPEM)))
	w.createString("MySecret", csiJSON)
	d, err := w.sm.DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pgpass.tmpl"), []byte(pgpassTmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("{{V1}}", v1, "{{ARN}}", aws.ToString(d.ARN)).Replace(mappingYAML)
	p := filepath.Join(dir, "secretsfs.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMappingFile(t *testing.T) {
	w := newWorld(t)
	cfg := mappingWorld(t, w)
	d := w.startDaemon("--config", cfg)

	if got := testutil.ListDir(t, d.mnt); !slices.Equal(got, []string{"MySecret", "MySecretPassword", "MySecretUsername", "app/", "broken.ini", "formats/", "legacy/", "missing"}) {
		t.Fatalf("the mount shows %v; want only the mapped files", got)
	}
	want := map[string]string{
		"app/db/password":          pwTwo,
		"app/db/previous-password": pwOne,
		"app/db/first-version":     dbValue(pwOne),
		"app/db/nested":            "nested-SECRET2",
		"app/db/dotted":            "dotted-SECRET3",
		"app/db/by-arn":            "app-SECRET0",
		"formats/raw":              envJSON,
		"formats/app.env":          "DB_PASS='it'\\''s $SECRET4'\nDB_USER=app-SECRET0\n",
		"formats/app.properties":   "DB_PASS=it's $SECRET4\nDB_USER=app-SECRET0\n",
		"formats/app.yaml":         "DB_PASS: it's $SECRET4\nDB_USER: app-SECRET0\n",
		"formats/app.json":         "{\n  \"DB_USER\": \"app-SECRET0\",\n  \"DB_PASS\": \"it's $SECRET4\"\n}\n",
		"formats/cert.pem":         certPEM,
		"legacy/settings.ini":      settingsINI(pwTwo, pwOne),
		"legacy/.pgpass":           `db.internal:5432:app:app-SECRET0:pw\:two\\SECRET7` + "\n",
		"MySecret":                 csiJSON,
		"MySecretUsername":         "memeuser-SECRET9",
		"MySecretPassword":         "hunter2-SECRET6",
	}
	for p, v := range want {
		if got := mustRead(t, d.path(p)); got != v {
			t.Errorf("%s:\n got %q\nwant %q", p, got, v)
		}
	}
	for p, m := range map[string]struct {
		mode     uint32
		uid, gid uint32
	}{
		"app/db/password":     {0o440, 1234, 5678},
		"legacy/.pgpass":      {0o600, 0, 0},
		"legacy/settings.ini": {0o400, 0, 0},
		"MySecret":            {0o400, 0, 0},
	} {
		var st syscall.Stat_t
		if err := syscall.Stat(d.path(p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFREG|m.mode || st.Uid != m.uid || st.Gid != m.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", p, st.Mode&0o7777, st.Uid, st.Gid, m.mode, m.uid, m.gid)
		}
	}

	// Only the affected files fail.
	if _, err := read(d.path("broken.ini")); errnoOf(err) != syscall.EIO {
		t.Errorf("broken.ini: %v, want EIO", err)
	}
	if _, err := read(d.path("missing")); errnoOf(err) != syscall.ENOENT {
		t.Errorf("missing: %v, want ENOENT", err)
	}
	eventually(t, 10*time.Second, "the template error in the log", func() bool {
		return strings.Contains(d.Stderr.String(), "broken.ini") && strings.Contains(d.Stderr.String(), "secretsfs.yaml:59:14:")
	})

	// A rotation re-renders every file that uses the secret, through the
	// same paths; the pinned version does not move.
	held, err := os.Open(d.path("legacy/settings.ini"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	w.put("prod/db", dbValue(pwThree))
	eventually(t, 10*time.Second, "settings.ini re-rendered after the rotation", func() bool {
		s, _ := read(d.path("legacy/settings.ini"))
		return s == settingsINI(pwThree, pwTwo)
	})
	for p, v := range map[string]string{
		"legacy/.pgpass":           "db.internal:5432:app:app-SECRET0:pw-three-SECRET8\n",
		"app/db/password":          pwThree,
		"app/db/previous-password": pwTwo,
		"app/db/first-version":     dbValue(pwOne),
	} {
		eventually(t, 5*time.Second, p+" after the rotation", func() bool {
			s, _ := read(d.path(p))
			return s == v
		})
	}
	buf := make([]byte, 4096)
	n, _ := held.ReadAt(buf, 0)
	if string(buf[:n]) != settingsINI(pwTwo, pwOne) {
		t.Errorf("a handle opened before the rotation read %q", buf[:n])
	}
	held.Close()

	d.Stop(t)
	assertNoSecretInLogs(t, d.Stderr.String()+d.Stdout.String())
}

// assertNoSecretInLogs checks every line of a run's output.
func assertNoSecretInLogs(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d log lines; the daemon logs at debug level", len(lines))
	}
	for i, l := range lines {
		for _, m := range secretMarkers {
			if strings.Contains(l, m) {
				t.Errorf("log line %d holds a secret value (%s): %s", i+1, m, l)
			}
		}
	}
}

func TestMappingFileExposeAllAndKernelCache(t *testing.T) {
	w := newWorld(t)
	cfg := mappingWorld(t, w)
	d := w.startDaemon("--config", cfg, "--expose-all", "--kernel-cache")
	got := testutil.ListDir(t, d.mnt)
	for _, n := range []string{"prod/", "legacy/", "MySecret"} {
		if !slices.Contains(got, n) {
			t.Fatalf("with --expose-all the mount shows %v; want %s among them", got, n)
		}
	}
	if got := mustRead(t, d.path("prod/db/password")); got != pwTwo {
		t.Fatalf("the default layout: %q", got)
	}
	if got := mustRead(t, d.path("legacy/settings.ini")); got != settingsINI(pwTwo, pwOne) {
		t.Fatalf("settings.ini: %q", got)
	}
	w.put("prod/db", dbValue(pwThree))
	eventually(t, 10*time.Second, "settings.ini re-rendered in kernel-cache mode", func() bool {
		s, _ := read(d.path("legacy/settings.ini"))
		return s == settingsINI(pwThree, pwTwo)
	})
	d.Stop(t)
	assertNoSecretInLogs(t, d.Stderr.String()+d.Stdout.String())
}

// runBinary runs secretsfs to completion and returns its output and exit
// code.
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = testutil.FakeAWSEnv(env...)
	var o, e testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestCheck(t *testing.T) {
	w := newWorld(t)
	cfg := mappingWorld(t, w)
	out, errOut, code := runBinary(t, nil, "check", "--endpoint-url", w.srv.URL(), "--config", cfg)
	if code != 1 {
		t.Fatalf("check exited %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"PATH", "legacy/settings.ini", "template(prod/db)", "0440", "1234:5678", "ok",
		"app/db/first-version", "MySecretPassword",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"2 of 19 files have problems",
		// a template error, with the template's line in the mapping file
		`secretsfs.yaml:56: files[14] (broken.ini): `,
		`secretsfs.yaml:59:14: executing "files[14].template" at <key "prod/db" "no_such_key">: error calling key: secret "prod/db" has no key no_such_key`,
		// a missing secret
		`secretsfs.yaml:60: files[15] (missing):`,
		`ResourceNotFoundException`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the problems lack %q:\n%s", want, errOut)
		}
	}
	assertNoSecretInLogs(t, out+errOut+"\n\n\n\n\n")

	// A missing key in a plain files: entry.
	bad := filepath.Join(t.TempDir(), "m.yaml")
	os.WriteFile(bad, []byte("files:\n  - path: a\n    secret: prod/db\n    key: db.primary.nope\n"), 0o600)
	out, errOut, code = runBinary(t, nil, "check", "--endpoint-url", w.srv.URL(), "--config", bad)
	if code != 1 || !strings.Contains(errOut, "m.yaml:2: files[0] (a):") || !strings.Contains(errOut, "has no key db.primary.nope") || !strings.Contains(out, "ENOENT") {
		t.Fatalf("missing key: exit %d\n%s\n%s", code, out, errOut)
	}

	// A clean file passes, and check mounts nothing.
	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("files:\n  - path: a\n    secret: prod/db\n    key: host\n"), 0o600)
	out, errOut, code = runBinary(t, nil, "check", "--endpoint-url", w.srv.URL(), "--config", good)
	if code != 0 || !strings.Contains(out, "1 files ok") {
		t.Fatalf("a good file: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, _, code := runBinary(t, nil, "check", "--no-such-flag"); code != 2 {
		t.Fatalf("a bad flag: exit %d, want 2", code)
	}
	if _, _, code := runBinary(t, nil, "check"); code != 2 {
		t.Fatalf("check without --config: exit %d, want 2", code)
	}
}

func TestMappingFileBadInput(t *testing.T) {
	testutil.RequireFUSE(t)
	cases := []struct{ name, text, want string }{
		{"malformed", "files:\n  - path: a\n   secret: b\n", "m.yaml:3: malformed YAML"},
		{"unknown field", "files:\n  - path: a\n    secret: b\n    permissions: \"0400\"\n", `m.yaml:4: files[0]: unknown field "permissions"`},
		{"unknown setting", "refresh_intervall: 1s\n", `m.yaml:1: refresh_intervall: unknown setting`},
		{"bad setting", "refresh_interval: soon\n", `m.yaml:1: refresh_interval: "soon" is not a valid value`},
		{"bad mode", "files:\n  - path: a\n    secret: b\n    mode: \"0999\"\n", `m.yaml:4: files[0].mode: "0999" is not an octal mode; use e.g. 0400`},
		{"duplicate path", "files:\n  - path: a\n    secret: b\n  - path: a\n    secret: c\n", `m.yaml:4: files[1]: path "a" is already used by files[0] at line 2`},
		{"escaping path", "files:\n  - path: x/../../etc/shadow\n    secret: b\n", `m.yaml:2: files[0].path: "x/../../etc/shadow" leaves the mount`},
		{"jmesPath beyond the subset", "objects:\n  - objectName: b\n    jmesPath:\n      - path: 'keys(@)'\n        objectAlias: k\n", `m.yaml:4: objects[0].jmesPath[0].path:`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.yaml")
			os.WriteFile(p, []byte(c.text), 0o600)
			mnt := t.TempDir()
			_, errOut, code := runBinary(t, nil, "mount", "--config", p, mnt)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, want 2 and %q in:\n%s", code, c.want, errOut)
			}
			if mounted(mnt) {
				t.Fatal("mounted despite the error")
			}
		})
	}
	// A flag wins over the file's setting.
	p := filepath.Join(t.TempDir(), "m.yaml")
	os.WriteFile(p, []byte("log_level: loud\nfiles:\n  - path: a\n    secret: b\n"), 0o600)
	if _, errOut, code := runBinary(t, nil, "mount", "--config", p, "--log-level", "bogus", t.TempDir()); code != 2 || !strings.Contains(errOut, `--log-level: is "bogus"`) || strings.Contains(errOut, "loud") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
}
