package mapping

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeSecrets is a Fetch over fixed values: id -> stage or version -> value.
type fakeSecrets map[string]map[string]string

func (s fakeSecrets) fetch(_ context.Context, r Ref) ([]byte, error) {
	sel := r.Stage
	if r.VersionID != "" {
		sel = r.VersionID
	}
	if sel == "" {
		sel = "AWSCURRENT"
	}
	v, ok := s[r.SecretID][sel]
	if !ok {
		return nil, fmt.Errorf("secret %q %q: %w", r.SecretID, sel, fs.ErrNotExist)
	}
	return []byte(v), nil
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("secretsfs.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParseFilesEntry(t *testing.T) {
	c := mustParse(t, `
refresh_interval: 1m
prefix: [a/, b/]
files:
  - path: app/db/password
    secret: prod/db
    key: password
    mode: "0440"
    uid: 1000
    gid: 1001
  - path: app/db/previous
    secret: arn:aws:secretsmanager:us-east-1:222233334444:secret:prod/db-AbCdEf
    stage: AWSPREVIOUS
  - path: pinned
    secret: prod/db
    version_id: 01234567-89ab-cdef-0123-456789abcdef
    format: json
    on_change:
      command: [systemctl, reload, app]
      debounce: 2s
on_change:
  signal: HUP
  pidfile: /run/app.pid
`)
	if len(c.Settings) != 2 || c.Settings[0].Flag != "refresh-interval" || !slices.Equal(c.Settings[1].Values, []string{"a/", "b/"}) || c.Settings[0].Line != 2 {
		t.Fatalf("settings = %+v", c.Settings)
	}
	if len(c.Files) != 3 {
		t.Fatalf("files = %+v", c.Files)
	}
	f := c.Files[0]
	if f.Path != "app/db/password" || f.Ref.SecretID != "prod/db" || f.Key.String() != "password" || f.Mode != 0o440 || *f.UID != 1000 || *f.GID != 1001 || f.Line != 5 {
		t.Fatalf("files[0] = %+v", f)
	}
	if f := c.Files[1]; f.Ref.Stage != "AWSPREVIOUS" || !strings.Contains(f.Ref.SecretID, "222233334444") || f.Mode != 0 || f.UID != nil {
		t.Fatalf("files[1] = %+v", f)
	}
	f = c.Files[2]
	if f.Ref.VersionID == "" || f.Format != FormatJSON || f.OnChange == nil || f.OnChange.Debounce != 2*time.Second || !slices.Equal(f.OnChange.Command, []string{"systemctl", "reload", "app"}) {
		t.Fatalf("files[2] = %+v", f)
	}
	if oc := c.OnChangeOf(c.Files[0]); oc == nil || oc.Signal != "HUP" || oc.PIDFile != "/run/app.pid" {
		t.Fatalf("top-level on_change = %+v", oc)
	}
	if c.OnChangeOf(c.Files[2]) != c.Files[2].OnChange {
		t.Fatal("a file's own on_change must win")
	}
	if got := c.Files[2].Describe(); !strings.Contains(got, "@01234567") || !strings.Contains(got, "as json") {
		t.Fatalf("Describe = %q", got)
	}
}

func TestParseErrorsNameTheLineAndTheFix(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string // each must be in the error
	}{
		{"malformed", "files:\n  - path: a\n   secret: b\n", []string{"secretsfs.yaml:3: malformed YAML"}},
		{"tab", "files:\n\t- path: a\n", []string{"secretsfs.yaml:2: malformed YAML"}},
		{"unknown field", "files:\n  - path: a\n    secret: b\n    modee: \"0400\"\n", []string{`secretsfs.yaml:4: files[0]: unknown field "modee" (did you mean mode?)`}},
		{"bad mode", "files:\n  - path: a\n    secret: b\n    mode: \"0999\"\n", []string{`secretsfs.yaml:4: files[0].mode: "0999" is not an octal mode; use e.g. 0400`}},
		{"setuid mode", "files:\n  - path: a\n    secret: b\n    mode: \"4755\"\n", []string{`files[0].mode: "4755" has bits beyond the permissions`}},
		{"duplicate", "files:\n  - path: a/b\n    secret: x\n  - path: a/b\n    secret: y\n", []string{`secretsfs.yaml:4: files[1]: path "a/b" is already used by files[0] at line 2`}},
		{"file as dir", "files:\n  - path: a\n    secret: x\n  - path: a/b\n    secret: y\n", []string{`secretsfs.yaml:4: files[1]: path "a/b" needs "a" to be a directory`}},
		{"escape", "files:\n  - path: ../etc/passwd\n    secret: x\n", []string{`secretsfs.yaml:2: files[0].path: "../etc/passwd" leaves the mount`}},
		{"escape inside", "files:\n  - path: a/../../b\n    secret: x\n", []string{`leaves the mount`}},
		{"absolute", "files:\n  - path: /etc/x\n    secret: x\n", []string{`files[0].path: "/etc/x" is absolute; give a path relative to the mount point, e.g. etc/x`}},
		{"dot segment", "files:\n  - path: a//b\n    secret: x\n", []string{`write it as a/b`}},
		{"no secret", "files:\n  - path: a\n", []string{`secretsfs.yaml:2: files[0]: secret is missing`}},
		{"no path", "files:\n  - secret: a\n", []string{`files[0]: path is missing`}},
		{"stage and version", "files:\n  - path: a\n    secret: x\n    stage: S\n    version_id: 01234567-89ab-cdef-0123-456789abcdef\n", []string{`secretsfs.yaml:5: files[0]: stage and version_id are both given`}},
		{"short version", "files:\n  - path: a\n    secret: x\n    version_id: v1\n", []string{`files[0].version_id: "v1" is not a version id`}},
		{"bad format", "files:\n  - path: a\n    secret: x\n    format: toml\n", []string{`secretsfs.yaml:4: files[0].format: "toml" is not a format; give one of raw, env, properties, yaml, json, base64`}},
		{"bad key", "files:\n  - path: a\n    secret: x\n    key: a..b\n", []string{`secretsfs.yaml:4: files[0].key: "a..b" has an empty key`}},
		{"bad uid", "files:\n  - path: a\n    secret: x\n    uid: bob\n", []string{`files[0].uid: "bob" is not a numeric id`}},
		{"template and secret", "files:\n  - path: a\n    secret: x\n    template: hi\n", []string{`secretsfs.yaml:3: files[0]: secret is given with a template`}},
		{"template and key", "files:\n  - path: a\n    key: x\n    template: hi\n", []string{`files[0]: key does not apply to a template`}},
		{"template syntax", "files:\n  - path: a\n    template: |\n      line one\n      {{ secret \"x\" }\n", []string{`secretsfs.yaml:5: `}},
		{"template id not constant", "files:\n  - path: a\n    template: |\n      {{ $id := \"x\" }}\n      {{ secret $id }}\n", []string{`secretsfs.yaml:5:`, `the secret id given to secret must be a quoted string`}},
		{"template unknown func", "files:\n  - path: a\n    template: '{{ secrett \"x\" }}'\n", []string{`secretsfs.yaml:3:`, `function "secrett" not defined`}},
		{"template file missing", "files:\n  - path: a\n    template_file: nope.tmpl\n", []string{`secretsfs.yaml:3: files[0].template_file: cannot read`}},
		{"arn of another service", "files:\n  - path: a\n    secret: arn:aws:ssm:us-east-1:1:parameter/x\n", []string{`is not a Secrets Manager secret ARN`}},
		{"on_change both", "on_change:\n  command: x\n  signal: HUP\n  pidfile: /p\n", []string{`secretsfs.yaml:2: on_change: give command: or signal:, not both`}},
		{"on_change bad signal", "on_change:\n  signal: BOOM\n  pidfile: /p\n", []string{`secretsfs.yaml:2: on_change.signal: "BOOM" is not a signal`}},
		{"on_change no pidfile", "on_change:\n  signal: HUP\n", []string{`signal: needs pidfile:`}},
		{"on_change debounce", "on_change:\n  command: x\n  debounce: soon\n", []string{`on_change.debounce: "soon" is not a duration`}},
		{"files not a list", "files:\n  path: a\n", []string{`secretsfs.yaml:2: files: must be a list`}},
		{"not a mapping", "- a\n- b\n", []string{`secretsfs.yaml:1: the file must be a mapping`}},
		{"empty", "", []string{`secretsfs.yaml:1: the file is empty`}},
		{"two docs", "a: 1\n---\nb: 2\n", []string{`a second YAML document`}},
		{"repeated field", "files:\n  - path: a\n    path: b\n    secret: x\n", []string{`secretsfs.yaml:3: files[0]: field "path" given twice`}},
		{"objects ssm", "objects: |\n  - objectName: x\n    objectType: ssmparameter\n", []string{`secretsfs.yaml:3: objects[0].objectType: ssmparameter: secretsfs serves Secrets Manager only`}},
		{"objects unknown", "objects:\n  - objectName: x\n    objectAliass: y\n", []string{`secretsfs.yaml:3: objects[0]: unknown field "objectAliass" (did you mean objectAlias?)`}},
		{"objects jmes", "objects: |\n  - objectName: x\n    jmesPath:\n      - path: api-key\n        objectAlias: k\n", []string{`secretsfs.yaml:4: objects[0].jmesPath[0].path: "api-key": "api-key" is not a plain JMESPath field; quote it`}},
		{"objects jmes filter", "objects: |\n  - objectName: x\n    jmesPath:\n      - path: 'items[0]'\n        objectAlias: k\n", []string{`secretsfs.yaml:4:`, `JMESPath subset`}},
		{"objects jmes no alias", "objects: |\n  - objectName: x\n    jmesPath:\n      - path: a\n", []string{`secretsfs.yaml:4: objects[0].jmesPath[0]: objectAlias is missing`}},
		{"objects failover", "objects:\n  - objectName: x\n    objectAlias: y\n    failoverObject:\n      objectName: z\n", []string{`secretsfs.yaml:4: objects[0].failoverObject: is not supported`}},
		{"objects malformed", "objects: |\n  - objectName: x\n   objectAlias: y\n", []string{`secretsfs.yaml:`, `malformed YAML`}},
		{"objects no name", "objects:\n  - objectAlias: y\n", []string{`objects[0]: objectName is missing`}},
		{"objects and files clash", "files:\n  - path: MySecret\n    secret: a\nobjects:\n  - objectName: MySecret\n", []string{`secretsfs.yaml:5: objects[0]: path "MySecret" is already used by files[0] at line 2`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("secretsfs.yaml", []byte(c.text))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestSeveralProblemsAreAllReported(t *testing.T) {
	_, err := Parse("m.yaml", []byte("files:\n  - path: a\n    secret: x\n    mode: \"9\"\n  - path: ../b\n    secret: y\n"))
	if err == nil || strings.Count(err.Error(), "\n") != 1 || !strings.Contains(err.Error(), "m.yaml:4:") || !strings.Contains(err.Error(), "m.yaml:5:") {
		t.Fatalf("err = %v", err)
	}
}

func TestCSIProviderExamples(t *testing.T) {
	c, err := Load("testdata/csi-objects.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		path, id, stage, key string
		mode                 os.FileMode
	}
	var got []want
	for _, f := range c.Files {
		got = append(got, want{f.Path, f.Ref.SecretID, f.Ref.Stage, f.Key.String(), f.Mode})
	}
	exp := []want{
		{"MySecret", "MySecret", "", "", 0},
		{"arn:aws:secretsmanager:us-east-2:111122223333:secret:MySecret2-d4e5f6", "arn:aws:secretsmanager:us-east-2:111122223333:secret:MySecret2-d4e5f6", "", "", 0},
		{"MySecret3-previous", "MySecret3", "AWSPREVIOUS", "", 0},
		{"MySecret4", "MySecret4", "AWSCURRENT", "", 0o600},
		{"MySecret5", "MySecret5", "", "", 0},
		{"MySecretUsername", "MySecret5", "", "username", 0},
		{"MySecretPassword", "MySecret5", "", "password", 0o440},
		{"MySecretApiKey", "MySecret5", "", `api-key`, 0},
		{"MySecretDbHost", "MySecret5", "", "db.host", 0},
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("files:\n%v\nwant\n%v", got, exp)
	}
	// Lines are counted in the file, through the embedded string.
	if c.Files[2].Line != 9 || c.Files[6].Line != 22 {
		t.Fatalf("lines %d and %d, want 9 and 22", c.Files[2].Line, c.Files[6].Line)
	}
}

func TestWholeSecretProviderClass(t *testing.T) {
	c, err := Load("testdata/spc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Settings) != 1 || c.Settings[0].Flag != "region" || c.Settings[0].Values[0] != "us-east-1" {
		t.Fatalf("settings %+v", c.Settings)
	}
	if len(c.Files) != 2 || c.Files[0].Path != "prod-MySecret" || c.Files[1].Path != "dbusername" || c.Files[1].Key.String() != "username" {
		t.Fatalf("files %+v", c.Files)
	}
}

func TestRenderFormats(t *testing.T) {
	secrets := fakeSecrets{
		"app": {"AWSCURRENT": `{"DB_USER":"app","DB_PASS":"it's $ecret","PORT":5432,"db":{"primary":{"password":"p1","host.name":"h"}},"list":[{"x":1}],"cert":"aGVsbG8K","big":1e400, "ünï": "wert=1"}`},
		"b64": {"AWSCURRENT": "aGVs\nbG8="},
		"bad": {"AWSCURRENT": `not json!`},
		"env": {"AWSCURRENT": `{"bad-name":"x"}`},
	}
	cases := []struct {
		entry, want string
	}{
		{"secret: app\n    key: DB_USER", "app"},
		{"secret: app\n    key: PORT", "5432"},
		{"secret: app\n    key: db.primary.password", "p1"},
		{"secret: app\n    key: 'db.primary.\"host.name\"'", "h"},
		{"secret: app\n    key: list.0.x", "1"},
		{"secret: app\n    key: db", `{"primary":{"password":"p1","host.name":"h"}}`},
		{"secret: app\n    key: cert\n    format: base64", "hello\n"},
		{"secret: b64\n    format: base64", "hello"},
		{"secret: app\n    key: db\n    format: json", "{\n  \"primary\": {\n    \"password\": \"p1\",\n    \"host.name\": \"h\"\n  }\n}\n"},
		{"secret: app\n    key: db\n    format: yaml", "primary:\n  host.name: h\n  password: p1\n"},
		{"secret: app\n    key: list\n    format: yaml", "- x: 1\n"},
		{"secret: app\n    key: db.primary\n    format: env", "host.name=h\n"}, // replaced below: must fail
	}
	for _, c := range cases[:len(cases)-1] {
		cfg := mustParse(t, "files:\n  - path: f\n    "+c.entry+"\n")
		got, err := cfg.Files[0].Render(context.Background(), secrets.fetch)
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", c.entry, got, err, c.want)
		}
	}
	env := mustParse(t, "files:\n  - path: f\n    secret: app\n    key: db.primary\n    format: env\n  - path: g\n    secret: env\n    format: env\n")
	for _, f := range env.Files {
		if _, err := f.Render(context.Background(), secrets.fetch); err == nil || !strings.Contains(err.Error(), "is not a shell variable name") {
			t.Errorf("%s: err = %v", f.Path, err)
		}
	}
	whole := mustParse(t, "files:\n  - path: e\n    secret: app\n    format: env\n  - path: p\n    secret: app\n    format: properties\n  - path: y\n    secret: app\n    format: yaml\n")
	out := map[string]string{}
	for _, f := range whole.Files {
		b, err := f.Render(context.Background(), fakeSecrets{"app": {"AWSCURRENT": `{"DB_USER":"app","DB_PASS":"it's $ecret","PORT":5432,"on":true,"n":null,"url":"a=b:c d#!"}`}}.fetch)
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		out[f.Path] = string(b)
	}
	if want := "DB_PASS='it'\\''s $ecret'\nDB_USER=app\nPORT=5432\nn=null\non=true\nurl='a=b:c d#!'\n"; out["e"] != want {
		t.Errorf("env:\n%s\nwant\n%s", out["e"], want)
	}
	if want := "DB_PASS=it's $ecret\nDB_USER=app\nPORT=5432\nn=null\non=true\nurl=a\\=b\\:c d\\#\\!\n"; out["p"] != want {
		t.Errorf("properties:\n%s\nwant\n%s", out["p"], want)
	}
	if want := "DB_PASS: it's $ecret\nDB_USER: app\nPORT: 5432\n\"n\": null\n\"on\": true\nurl: a=b:c d#!\n"; out["y"] != want {
		t.Errorf("yaml:\n%s\nwant\n%s", out["y"], want)
	}
	for _, e := range []string{"secret: bad\n    format: json", "secret: bad\n    key: a", "secret: bad\n    format: base64", "secret: app\n    key: PORT\n    format: base64"} {
		cfg := mustParse(t, "files:\n  - path: f\n    "+e+"\n")
		_, err := cfg.Files[0].Render(context.Background(), secrets.fetch)
		if err == nil || strings.Contains(err.Error(), "not json") || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: err = %v; want an error that is not ENOENT and quotes no value", e, err)
		}
	}
	missing := mustParse(t, "files:\n  - path: f\n    secret: app\n    key: nope\n  - path: g\n    secret: nope\n")
	for _, f := range missing.Files {
		if _, err := f.Render(context.Background(), secrets.fetch); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: err = %v, want not exist", f.Path, err)
		}
	}
}

func TestPropertiesEscapes(t *testing.T) {
	if got := propertiesEscape(" a b\tü😀", false); got != `\ a b\t\u00FC\uD83D\uDE00` {
		t.Fatalf("value %q", got)
	}
	if got := propertiesEscape("a b", true); got != `a\ b` {
		t.Fatalf("key %q", got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "": "''", "a b": "'a b'", "it's": `'it'\''s'`, "$x": "'$x'", "a/b-c.d_e:f@g%h+i=j,k": "a/b-c.d_e:f@g%h+i=j,k"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyPaths(t *testing.T) {
	for in, want := range map[string][]string{
		"a":              {"a"},
		"a.b.c":          {"a", "b", "c"},
		`a."b.c"`:        {"a", "b.c"},
		`"a\"q".b`:       {`a"q`, "b"},
		`"".x`:           {"", "x"},
		`api-key`:        {"api-key"},
		`db.primary.pw2`: {"db", "primary", "pw2"},
	} {
		got, err := ParseKeyPath(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseKeyPath(%q) = %q, %v", in, got, err)
		}
		if back, err := ParseKeyPath(got.String()); err != nil || !slices.Equal(back, got) {
			t.Errorf("%q: String() = %q does not read back", in, got.String())
		}
	}
	for _, bad := range []string{"", ".a", "a.", "a..b", `"a`, `a"b"`, `"a"b`} {
		if _, err := ParseKeyPath(bad); err == nil {
			t.Errorf("ParseKeyPath(%q): no error", bad)
		}
	}
	for _, bad := range []string{"a-b", "a[0]", "a | b", "*", "a.b[?x]", "1a"} {
		if _, err := parseJMESPath(bad); err == nil {
			t.Errorf("parseJMESPath(%q): no error", bad)
		}
	}
}

func TestTemplateRendersAndKnowsItsSecrets(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "pgpass.tmpl")
	os.WriteFile(tf, []byte(`{{ key "prod/db" "host" }}:5432:*:{{ key "prod/db" "username" | pgpass }}:{{ key "prod/db" "password" | pgpass }}`+"\n"), 0o600)
	cfgPath := filepath.Join(dir, "m.yaml")
	os.WriteFile(cfgPath, []byte(`files:
  - path: app/settings.ini
    template: |
      [database]
      user = {{ key "prod/db" "username" }}
      password = {{ key "prod/db" "password" }}
      previous = {{ keyStage "prod/db" "AWSPREVIOUS" "password" }}
      [api]
      token = {{ secret "prod/api" | trim }}
      quoted = {{ secretStage "prod/api" "AWSCURRENT" | shellquote }}
      {{- with secretJSON "prod/db" }}
      dsn = postgres://{{ .username }}@{{ .host }}/app
      {{- end }}
      enc = {{ secret "prod/api" | trim | b64enc | b64dec }} {{ toJSON "x" }} {{ upper "a" }}{{ lower "B" }}{{ replace "a" "b" "aa" }}
  - path: .pgpass
    template_file: pgpass.tmpl
`), 0o600)
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if ids := c.Files[0].SecretIDs(); !slices.Equal(ids, []string{"prod/db", "prod/api"}) {
		t.Fatalf("SecretIDs = %v", ids)
	}
	secrets := fakeSecrets{
		"prod/db":  {"AWSCURRENT": `{"username":"app","password":"p:w\\1","host":"db.internal"}`, "AWSPREVIOUS": `{"password":"old"}`},
		"prod/api": {"AWSCURRENT": "tok en\n"},
	}
	got, err := c.Files[0].Render(context.Background(), secrets.fetch)
	if err != nil {
		t.Fatal(err)
	}
	want := "[database]\nuser = app\npassword = p:w\\1\nprevious = old\n[api]\ntoken = tok en\nquoted = 'tok en\n'\ndsn = postgres://app@db.internal/app\nenc = tok en \"x\" Abbb\n"
	if string(got) != want {
		t.Fatalf("rendered:\n%s\nwant\n%s", got, want)
	}
	got, err = c.Files[1].Render(context.Background(), secrets.fetch)
	if err != nil || string(got) != "db.internal:5432:*:app:p\\:w\\\\1\n" {
		t.Fatalf(".pgpass = %q, %v", got, err)
	}
}

func TestTemplateErrorsNameTheLineAndNoValue(t *testing.T) {
	c := mustParse(t, `files:
  - path: a
    template: |
      first line
      {{ key "prod/db" "nope" }}
  - path: b
    template: '{{ secret "missing" }}'
  - path: c
    template: |
      {{ printf "%d" (secret "prod/db") }}
  - path: d
    template: |
      {{ index (secretJSON "prod/db") "password" | printf "%s" | len | printf "%d" }}{{ template "x" }}
`)
	secrets := fakeSecrets{"prod/db": {"AWSCURRENT": `{"password":"hunter2hunter2"}`}}
	_, err := c.Files[0].Render(context.Background(), secrets.fetch)
	var te *TemplateError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "secretsfs.yaml:5:") || !strings.Contains(err.Error(), `has no key nope`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Files[1].Render(context.Background(), secrets.fetch); !errors.As(err, &te) || !strings.Contains(err.Error(), "secretsfs.yaml:7:") {
		t.Fatalf("err = %v", err)
	}
	got, _ := c.Files[2].Render(context.Background(), secrets.fetch)
	if strings.Contains(string(got), "hunter2") == false {
		// printf %d of a string renders %!d(string=...), which holds the
		// value: that is output, not an error, and stays in the file.
		t.Fatalf("got %q", got)
	}
	_, err = c.Files[3].Render(context.Background(), secrets.fetch)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

// TestDefect9_22_BadSecretIDsAreRefused: a secret id that is neither a
// secret's name (1 to 512 of A-Z a-z 0-9 /_+=.@-) nor a Secrets Manager
// secret ARN is refused, in files:, in templates and in objects:.
func TestDefect9_22_BadSecretIDsAreRefused(t *testing.T) {
	for text, want := range map[string]string{
		"files:\n  - path: a\n    secret: \"bad name!*\"\n":                                     `secretsfs.yaml:3: files[0].secret: "bad name!*" is not a secret id; give a secret's name (1 to 512 of the characters A-Z a-z 0-9 /_+=.@-) or its ARN`,
		"files:\n  - path: a\n    secret: " + strings.Repeat("n", 513) + "\n":                   `files[0].secret: "nnnn`,
		"files:\n  - path: a\n    secret: arn:aws:secretsmanager:us-east-1:1:secret:bad name\n": `secretsfs.yaml:3: files[0].secret: "arn:aws:secretsmanager:us-east-1:1:secret:bad name" is not a Secrets Manager secret ARN`,
		"files:\n  - path: a\n    template: |\n      x\n      {{ secret \"bad name!*\" }}\n":    `secretsfs.yaml:5:10: "bad name!*" is not a secret id`,
		"objects:\n  - objectName: \"bad name!*\"\n    objectAlias: a\n":                        `secretsfs.yaml:2: objects[0].objectName: "bad name!*" is not a secret id`,
	} {
		_, err := Parse("secretsfs.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %s", text, err, want)
		}
	}
	for _, good := range []string{"prod/db", "a_b+c=d.e@f-g", strings.Repeat("n", 512), "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf"} {
		mustParse(t, "files:\n  - path: a\n    secret: "+good+"\n  - path: b\n    template: '{{ secret \""+good+"\" }}'\n")
	}
}

// TestDefect11_01_SignalsTheHookCannotSendAreRefused: a signal the hook
// could not send (0, a negative number, a number beyond the last signal) is
// refused when the mapping file is read, with FILE:LINE, top-level and in a
// file's own on_change, not only when the hook runs.
func TestDefect11_01_SignalsTheHookCannotSendAreRefused(t *testing.T) {
	for _, sig := range []string{"99", "0", "-1"} {
		for text, want := range map[string]string{
			"on_change:\n  signal: \"" + sig + "\"\n  pidfile: /p\n":                                      `secretsfs.yaml:2: on_change.signal: "` + sig + `" is not a signal`,
			"files:\n  - path: a\n    secret: x\n    on_change: {signal: \"" + sig + "\", pidfile: /p}\n": `secretsfs.yaml:4: files[0].on_change.signal: "` + sig + `" is not a signal`,
		} {
			_, err := Parse("secretsfs.yaml", []byte(text))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q:\n got %v\nwant %s", text, err, want)
			}
		}
	}
}
