package mapping

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// fuzzSource names the mapping file in the fuzz targets; its directory does
// not exist, so a relative template_file is never read.
const fuzzSource = "/nonexistent-secretsfs-fuzz/m.yaml"

// problemLine is how every problem Parse reports starts: the file and a line.
var problemLine = regexp.MustCompile(`^` + regexp.QuoteMeta(fuzzSource) + `:\d+:`)

// FuzzParse: the mapping file loader never panics; every problem it reports
// names the file and a line; what it accepts holds only clean relative paths
// inside the mount, each used once and none where another needs a directory,
// and every file reads a secret or renders a template.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"files:\n  - path: app/db/password\n    secret: prod/db\n    key: password\n    mode: \"0440\"\n    uid: 1000\n",
		"refresh_interval: 1m\nprefix: [a/, b/]\nfiles:\n  - path: x\n    secret: s\n    format: env\n    on_change: {signal: HUP, pidfile: /run/x.pid}\n",
		"files:\n  - path: app/settings.ini\n    template: |\n      host = {{ key \"prod/db\" \"host\" }}\n      pw = {{ secretStage \"prod/db\" \"AWSPREVIOUS\" }}\n",
		"files:\n  - path: t\n    template: '{{ secret .x }}'\n",
		"files:\n  - path: t\n    template: '{{ range $k, $v := secretJSON \"a\" }}{{ $k }}={{ $v }}{{ end }}'\n",
		"files:\n  - path: ../escape\n    secret: s\n  - path: /abs\n    secret: s\n  - path: a//b\n    secret: s\n",
		"files:\n  - path: a\n    secret: s\n  - path: a/b\n    secret: s\n  - path: a\n    secret: t\n",
		"objects: |\n  - objectName: \"MySecret\"\n    jmesPath:\n      - path: '\"api-key\"'\n        objectAlias: key\n",
		"objects:\n  - objectName: arn:aws:secretsmanager:us-east-2:111122223333:secret:MySecret2-d4e5f6\n    objectAlias: db\n    objectVersionLabel: AWSPREVIOUS\n    filePermission: \"0600\"\n",
		"apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nspec:\n  parameters:\n    pathTranslation: \"False\"\n    objects: |\n      - objectName: a/b\n",
		"files: [", "files:\n\t- path: x\n", "---\n", "# only a comment\n", "", "a: 1\n---\nb: 2\n", "files: 3\n",
		"files:\n  - path: x\n    secret: s\n    key: 'a.\"b.c\".0'\n    stage: S\n    version_id: v\n",
		"on_change:\n  command: [\"/bin/sh\", \"-c\", \"echo\"]\n  debounce: 2s\nfiles:\n  - {path: x, secret: s}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(fuzzSource, data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with its error %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !problemLine.MatchString(line) {
					t.Fatalf("a problem does not name the file and a line: %q (all: %q)", line, err)
				}
			}
			return
		}
		paths := map[string]bool{}
		for _, file := range cfg.Files {
			p := file.Path
			if p == "" || strings.HasPrefix(p, "/") || len(p) > 4096 {
				t.Fatalf("%s: path %q accepted", file.Where, p)
			}
			for _, seg := range strings.Split(p, "/") {
				if seg == "" || seg == "." || seg == ".." || len(seg) > 255 || strings.ContainsRune(seg, 0) {
					t.Fatalf("%s: path %q has the segment %q", file.Where, p, seg)
				}
			}
			if paths[p] {
				t.Fatalf("path %q accepted twice", p)
			}
			paths[p] = true
			if (file.Template == nil) == (file.Ref.SecretID == "") {
				t.Fatalf("%s: a file must read a secret or render a template: %+v", file.Where, file)
			}
			for _, id := range file.SecretIDs() {
				if id == "" && file.Template == nil {
					t.Fatalf("%s: empty secret id", file.Where)
				}
			}
		}
		for p := range paths {
			for dir := p; strings.Contains(dir, "/"); {
				dir = dir[:strings.LastIndexByte(dir, '/')]
				if paths[dir] {
					t.Fatalf("%q is a file and the directory of %q", dir, p)
				}
			}
		}
	})
}

// FuzzKeyPath: a key path that parses is written back by String in a form
// that parses to the same path, and so is any path of keys (UTF-8, as JSON
// keys are).
func FuzzKeyPath(f *testing.F) {
	for _, s := range []string{"password", "db.primary.password", `db."primary.host".port`, `a."".b`, `"a\"b"`,
		"servers.0.host", ` spaced .x`, `a..b`, `a.`, `"unclosed`, `"\u00e9"`, `a"b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // JSON keys are UTF-8; a quoted segment cannot hold other bytes
		}
		if p, err := ParseKeyPath(s); err == nil {
			if len(p) == 0 {
				t.Fatalf("ParseKeyPath(%q) = an empty path", s)
			}
			back, err := ParseKeyPath(p.String())
			if err != nil || !slices.Equal(back, p) {
				t.Fatalf("ParseKeyPath(%q) = %q, written %q, read back as %q (%v)", s, p, p.String(), back, err)
			}
		}
		p := KeyPath(strings.Split(s, "\x00"))
		back, err := ParseKeyPath(p.String())
		if err != nil || !slices.Equal(back, p) {
			t.Fatalf("the path %q is written %q and read back as %q (%v)", p, p.String(), back, err)
		}
	})
}

// markA and markB surround every fuzzed value, so that a message holding
// any part of the value's start or end shows one of them.
const markA, markB = "Qq7Zmark", "Zq7Qkram"

// renderConfig is a mapping with a file per format and templates with
// every function over the secrets "db" (a JSON object holding the fuzzed
// value), "raw" (the value alone) and "whole" (fuzzed bytes as they are).
const renderConfig = `files:
  - {path: key, secret: db, key: password}
  - {path: nested, secret: db, key: 'nested."a.b".0'}
  - {path: env, secret: db, format: env}
  - {path: properties, secret: db, format: properties}
  - {path: yaml, secret: db, format: yaml}
  - {path: json, secret: db, format: json}
  - {path: base64, secret: db, key: password, format: base64}
  - {path: raw-base64, secret: raw, format: base64}
  - {path: raw-yaml, secret: raw, format: yaml}
  - {path: raw-key, secret: raw, key: password}
  - {path: whole-yaml, secret: whole, format: yaml}
  - {path: whole-json, secret: whole, format: json}
  - {path: whole-env, secret: whole, format: env}
  - {path: whole-properties, secret: whole, format: properties}
  - {path: whole-key, secret: whole, key: a.0.b}
  - path: template
    template: |
      {{ key "db" "password" }} {{ key "db" "password" | shellquote }} {{ key "db" "password" | pgpass }}
      {{ key "db" "password" | toJSON }} {{ secret "raw" | b64enc }} {{ secret "raw" | trim | lower | upper }}
      {{ replace "a" "b" (secret "raw") }} {{ keyStage "db" "AWSCURRENT" "nested.\"a.b\".0" }}
      {{ range $k, $v := secretJSON "db" }}{{ $k }}={{ $v }};{{ end }}
      {{ with secretJSONStage "db" "AWSCURRENT" }}{{ .user }}{{ end }}
  - path: template-b64dec
    template: '{{ secret "raw" | b64dec }}'
  - path: template-whole-json
    template: '{{ range $k, $v := secretJSON "whole" }}{{ $k }}{{ end }}'
  - path: template-key-of-raw
    template: '{{ key "raw" "a.b" }}'
  - path: template-missing
    template: '{{ (secretJSON "db").missing }}'
`

// FuzzRender: hostile values through every format and template function.
// Rendering never panics; no error quotes the value; a key file holds the
// value exactly; the env, properties, yaml and json renderings read back
// (by a shell, java.util.Properties, a YAML parser, a JSON parser) as the
// value.
func FuzzRender(f *testing.F) {
	cfg, err := Parse(fuzzSource, []byte(renderConfig))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ value, whole string }{
		{"hunter2", `{"a":[{"b":"c"}]}`},
		{"it's", `{"K":"v","k2":1.5e10,"n":null}`},
		{"", `[1,2]`},
		{" leading and trailing ", `"str"`},
		{"line1\nline2\r\n\ttab\f", `{"a":{"b":[true,false]}}`},
		{"yes", `{"0123":"on","x":"~"}`},
		{"=:#!\\ ", "not json"},
		{"ü€😀\u2028", `{"a": [ {"b" : "😀"} ]}`},
		{"aGVsbG8=", `  {"deep":[[[[{}]]]]}  `},
		{"'\"$(rm -rf /)`x`;|&<>*?[]{}", `{"bad key":"v"}`},
		{"- item\n  key: value\n", `1e400`},
		{"\x00nul", "{\"k\":\"\\u0000\"}"},
	} {
		f.Add(s.value, []byte(s.whole))
	}
	f.Fuzz(func(t *testing.T, value string, whole []byte) {
		marked := markA + value + markB
		db, err := json.Marshal(map[string]any{
			"password": marked,
			"user":     "app",
			"nested":   map[string]any{"a.b": []string{marked}},
		})
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string][]byte{"db": db, "raw": []byte(marked), "whole": whole}
		fetch := func(_ context.Context, r Ref) ([]byte, error) {
			v, ok := secrets[r.SecretID]
			if !ok {
				return nil, fmt.Errorf("secret %q: %w", r.SecretID, fs.ErrNotExist)
			}
			return append([]byte(nil), v...), nil
		}
		// What the value reads as once it went through JSON: invalid UTF-8
		// became U+FFFD.
		var want string
		if err := json.Unmarshal(mustJSON(t, marked), &want); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, file := range cfg.Files {
			b, err := file.Render(context.Background(), fetch)
			if err != nil {
				if msg := err.Error(); strings.Contains(msg, markA) || strings.Contains(msg, markB) {
					t.Fatalf("%s: the error quotes the value: %s", file.Path, msg)
				}
				continue
			}
			out[file.Path] = string(b)
		}
		for _, p := range []string{"key", "nested"} {
			if got, ok := out[p]; !ok || got != want {
				t.Fatalf("%s = %q (rendered: %v), want %q", p, got, ok, want)
			}
		}
		if got := readEnv(t, out["env"]); got["password"] != want || got["user"] != "app" {
			t.Fatalf("env = %q reads back as %q, want %q", out["env"], got, want)
		}
		if got := readProperties(t, out["properties"]); got["password"] != want || got["user"] != "app" {
			t.Fatalf("properties = %q read back as %q, want %q", out["properties"], got, want)
		}
		var y map[string]any
		if err := yaml.Unmarshal([]byte(out["yaml"]), &y); err != nil || y["password"] != want || y["user"] != "app" {
			t.Fatalf("yaml = %q reads back as %#v (%v), want %q", out["yaml"], y, err, want)
		}
		var j map[string]any
		if err := json.Unmarshal([]byte(out["json"]), &j); err != nil || j["password"] != want {
			t.Fatalf("json = %q reads back as %#v (%v)", out["json"], j, err)
		}
		if got, ok := out["whole-yaml"]; ok {
			var fromJSON any
			dec := json.NewDecoder(bytes.NewReader(whole))
			dec.UseNumber()
			if err := dec.Decode(&fromJSON); err != nil {
				t.Fatalf("whole-yaml rendered from a value that is not JSON: %q", whole)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(got), &doc); err != nil || len(doc.Content) != 1 {
				t.Fatalf("whole-yaml = %q is not one YAML document: %v", got, err)
			}
			if where := sameValue(fromJSON, doc.Content[0], "$"); where != "" {
				t.Fatalf("whole-yaml = %q does not read back as %q: differs at %s", got, whole, where)
			}
		}
		if got, ok := out["whole-json"]; ok && !json.Valid([]byte(got)) {
			t.Fatalf("whole-json = %q is not JSON", got)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameValue compares a value decoded from JSON (numbers kept as text) with
// the YAML node a parser reads: the same structure, strings that resolve as
// strings, numbers with the same text, booleans and nulls as such. It
// returns where they differ, or "".
func sameValue(j any, y *yaml.Node, at string) string {
	tag := y.ShortTag()
	switch jv := j.(type) {
	case map[string]any:
		if y.Kind != yaml.MappingNode || len(y.Content) != 2*len(jv) {
			return at
		}
		for i := 0; i < len(y.Content); i += 2 {
			k := y.Content[i]
			v, ok := jv[k.Value]
			if !ok || k.ShortTag() != "!!str" {
				return at + " key " + strconv.Quote(k.Value)
			}
			if w := sameValue(v, y.Content[i+1], at+"."+k.Value); w != "" {
				return w
			}
		}
	case []any:
		if y.Kind != yaml.SequenceNode || len(y.Content) != len(jv) {
			return at
		}
		for i := range jv {
			if w := sameValue(jv[i], y.Content[i], fmt.Sprintf("%s[%d]", at, i)); w != "" {
				return w
			}
		}
	case string:
		if y.Kind != yaml.ScalarNode || tag != "!!str" || y.Value != jv {
			return fmt.Sprintf("%s (%s %q)", at, tag, y.Value)
		}
	case json.Number:
		if y.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || y.Value != string(jv) {
			return fmt.Sprintf("%s (%s %q)", at, tag, y.Value)
		}
	case bool:
		if y.Kind != yaml.ScalarNode || tag != "!!bool" || y.Value != strconv.FormatBool(jv) {
			return fmt.Sprintf("%s (%s %q)", at, tag, y.Value)
		}
	case nil:
		if y.Kind != yaml.ScalarNode || tag != "!!null" {
			return fmt.Sprintf("%s (%s %q)", at, tag, y.Value)
		}
	default:
		return at + fmt.Sprintf(" (unexpected %T)", j)
	}
	return ""
}

// readEnv reads the env format the way a POSIX shell reads NAME=WORD
// lines: a word of unquoted safe characters and single-quoted runs (which
// may span lines) joined by \'. It fails the test on anything a shell
// would read otherwise.
func readEnv(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(text); {
		eq := strings.IndexByte(text[i:], '=')
		if eq < 0 {
			t.Fatalf("env text %q: no NAME= at offset %d", text, i)
		}
		name := text[i : i+eq]
		i += eq + 1
		var b strings.Builder
	word:
		for {
			if i == len(text) {
				t.Fatalf("env text %q does not end with a newline", text)
			}
			switch c := text[i]; {
			case c == '\n':
				i++
				break word
			case c == '\'':
				end := strings.IndexByte(text[i+1:], '\'')
				if end < 0 {
					t.Fatalf("env text %q: a quote is not closed", text)
				}
				b.WriteString(text[i+1 : i+1+end])
				i += end + 2
			case c == '\\' && i+1 < len(text) && text[i+1] == '\'':
				b.WriteByte('\'')
				i += 2
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("@%+=:,./_-", c) >= 0:
				b.WriteByte(c)
				i++
			default:
				t.Fatalf("env text %q: a shell reads the unquoted %q otherwise", text, c)
			}
		}
		out[name] = b.String()
	}
	return out
}

// readProperties reads key=value lines the way java.util.Properties.load
// does for what the properties format writes: backslash escapes (\t \n \r
// \f \uXXXX, and \x for x), leading white space of a value dropped.
func readProperties(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		for i := 0; i < len(line); i++ {
			if line[i] > 0x7e || (line[i] < 0x20 && line[i] != '\t' && line[i] != '\f') {
				t.Fatalf("properties line %q holds the byte %#x; the format is ISO-8859-1 with \\u escapes", line, line[i])
			}
		}
		var key, val strings.Builder
		cur, inKey, leading := &key, true, false
		for i := 0; i < len(line); i++ {
			c := line[i]
			if inKey && c == '=' {
				cur, inKey, leading = &val, false, true
				continue
			}
			if leading && (c == ' ' || c == '\t' || c == '\f') {
				continue
			}
			leading = false
			if c != '\\' {
				cur.WriteByte(c)
				continue
			}
			i++
			if i == len(line) {
				t.Fatalf("properties line %q ends with a lone backslash (a line continuation)", line)
			}
			switch e := line[i]; e {
			case 't':
				cur.WriteByte('\t')
			case 'n':
				cur.WriteByte('\n')
			case 'r':
				cur.WriteByte('\r')
			case 'f':
				cur.WriteByte('\f')
			case 'u':
				if i+5 > len(line) {
					t.Fatalf("properties line %q: short \\u escape", line)
				}
				n, err := strconv.ParseUint(line[i+1:i+5], 16, 16)
				if err != nil {
					t.Fatalf("properties line %q: bad \\u escape", line)
				}
				u := rune(n)
				i += 4
				if u >= 0xd800 && u < 0xdc00 && i+6 < len(line) && line[i+1] == '\\' && line[i+2] == 'u' {
					m, err := strconv.ParseUint(line[i+3:i+7], 16, 16)
					if err == nil {
						u = 0x10000 + (u-0xd800)<<10 + (rune(m) - 0xdc00)
						i += 6
					}
				}
				if !utf8.ValidRune(u) {
					u = utf8.RuneError
				}
				cur.WriteRune(u)
			default:
				cur.WriteByte(e)
			}
		}
		if inKey {
			t.Fatalf("properties line %q has no unescaped =", line)
		}
		out[key.String()] = val.String()
	}
	return out
}
