package envfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// cases are the rules of systemd.exec(5), EnvironmentFile=, one or more
// cases each: file text, and the assignments systemd makes of it, in order.
var cases = []struct {
	name string
	text string
	want []Var
}{
	{"the reported line: an unquoted value with spaces", "SECRETSFS_ON_CHANGE_COMMAND=logger secret rotated\n",
		[]Var{{"SECRETSFS_ON_CHANGE_COMMAND", "logger secret rotated", 1}}},
	{"comments with # and ;, also indented", "# A=1\n; B=2\n   # C=3\n\t; D=4\nE=5\n",
		[]Var{{"E", "5", 5}}},
	{"empty lines and lines without = are ignored", "\n\nJUST TEXT\n  \nA=1\n",
		[]Var{{"A", "1", 5}}},
	{"no trailing comment", "A=1 # one\n", []Var{{"A", "1 # one", 1}}},
	{"whitespace around name and value dropped, inside kept", "  A \t=  x   y \t \n",
		[]Var{{"A", "x   y", 1}}},
	{"carriage returns end lines", "A=x\r\nB=y\r\n", []Var{{"A", "x", 1}, {"B", "y", 2}}},
	{"unquoted: a backslash keeps the next character", `A=a\\b\ \"q\"\$x` + "\n",
		[]Var{{"A", `a\b "q"$x`, 1}}},
	{"unquoted: an escaped trailing space is kept", "A=a\\ \n", []Var{{"A", "a ", 1}}},
	{"unquoted: a backslash at the end of a line joins the next", "A=first \\\n  second\nB=2\n",
		[]Var{{"A", "first   second", 1}, {"B", "2", 3}}},
	{"unquoted: quotes after the first character are kept", `A=say "hi" it's` + "\n",
		[]Var{{"A", `say "hi" it's`, 1}}},
	{"single quotes: verbatim, no escapes, may span lines", "A=' x \\n $y \"z\" '\nB='one\ntwo'\n",
		[]Var{{"A", ` x \n $y "z" `, 1}, {"B", "one\ntwo", 2}}},
	{"double quotes: \\ keeps one of \" \\ ` $", `A="a \"b\" \\ \` + "`" + ` \$c"` + "\n",
		[]Var{{"A", "a \"b\" \\ ` $c", 1}}},
	{"double quotes: before another character both are kept", `A="a\qb\n"` + "\n",
		[]Var{{"A", `a\qb\n`, 1}}},
	{"double quotes: an escaped newline is dropped, a plain one kept", "A=\"one\\\ntwo\"\nB=\"one\ntwo\"\n",
		[]Var{{"A", "onetwo", 1}, {"B", "one\ntwo", 3}}},
	{"whitespace outside quotes dropped", "A=  \" x \"  \n", []Var{{"A", " x ", 1}}},
	{"quoted and unquoted parts are joined", "A=\"x\"y\nB=\"x\" 'y'\n", []Var{{"A", "xy", 1}, {"B", "xy", 2}}},
	{"nothing is expanded", "A=$HOME\nB=\"${HOME}\"\nC=`id`\n",
		[]Var{{"A", "$HOME", 1}, {"B", "${HOME}", 2}, {"C", "`id`", 3}}},
	{"empty values", "A=\nB=\"\"\nC=''\n", []Var{{"A", "", 1}, {"B", "", 2}, {"C", "", 3}}},
	{"a later assignment comes later", "A=1\nA=2\n", []Var{{"A", "1", 1}, {"A", "2", 2}}},
	{"no newline at the end", "A=x  ", []Var{{"A", "x", 1}}},
	{"an unterminated quote ends with the file", "A=\"x", []Var{{"A", "x", 1}}},
	{"= in the value", "A=b=c\n", []Var{{"A", "b=c", 1}}},
	{"UTF-8 values", "A=héllo wörld\n", []Var{{"A", "héllo wörld", 1}}},
	{"a comment ending in a backslash does not continue (systemd 254 and later)", "# note \\\nB=1\n",
		[]Var{{"B", "1", 2}}},
}

func TestIssue10_05_EnvFileParsedAsSystemdDoes(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.text))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.text, got, tc.want)
			}
		})
	}
}

// Lines systemd ignores with a warning, or files it refuses, are errors
// naming the line; the other assignments are still returned.
func TestIssue10_05_EnvFileMistakesAreNamed(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []Var
		err        string
	}{
		{"export is not allowed", "A=1\nexport B=2\n", []Var{{"A", "1", 1}}, `line 2: "export B" is not a variable name`},
		{"a name starting with a digit", "1A=x\n", nil, `line 1: "1A" is not a variable name`},
		{"a dash in a name", "A-B=x\nC=y\n", []Var{{"C", "y", 2}}, `line 1: "A-B" is not a variable name`},
		{"an empty name", "=x\n==y\n", nil, `line 2: "=" is not a variable name`},
		{"not UTF-8", "A=\xff\n", nil, "line 1: not UTF-8"},
		{"a NUL byte", "A=1\nB=\x00\n", nil, "line 2: a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "systemd") {
				t.Fatalf("Parse(%q) error = %v, want %q and what systemd does", tc.text, err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
		})
	}
}

func TestApplyReplacesAndAppends(t *testing.T) {
	got := Apply([]string{"PATH=/bin", "A=old", "B=keep"}, []Var{{Name: "A", Value: "1"}, {Name: "C", Value: "3"}, {Name: "A", Value: "2"}})
	want := []string{"PATH=/bin", "B=keep", "A=2", "C=3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Apply = %q, want %q", got, want)
	}
}

func TestReadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(path, []byte("export A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.HasPrefix(err.Error(), path+": line 1:") {
		t.Fatalf("Read = %v, want an error starting with the path and line", err)
	}
}

// systemd's own parser, where it is installed, agrees on every case it
// shares with EnvironmentFile=: the environment.d generator reads files with
// the same function (load_env_file), then expands $VAR, which
// EnvironmentFile= does not, and prints the result. Cases with "$", values
// over several lines (printed over several lines) and the comment rule that
// changed in systemd 254 are left to the table.
func TestEnvFileAgreesWithSystemd(t *testing.T) {
	gen := "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator"
	if _, err := os.Stat(gen); err != nil {
		t.Skip("systemd's environment.d generator is not installed")
	}
	for i, tc := range cases {
		if strings.Contains(tc.text, "$") || strings.Contains(tc.name, "systemd 254") {
			continue
		}
		multiline := false
		for _, v := range tc.want {
			multiline = multiline || strings.ContainsAny(v.Value, "\n")
		}
		if multiline {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "environment.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "environment.d", "t.conf"), []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(gen)
			cmd.Env = []string{"XDG_CONFIG_HOME=" + dir, "HOME=/nonexistent"}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("case %d: %s: %v", i, gen, err)
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				name, value, _ := strings.Cut(line, "=")
				got[name] = unquoteShell(value)
			}
			ours, _ := Parse([]byte(tc.text))
			want := map[string]string{}
			for _, v := range ours {
				want[v.Name] = v.Value
			}
			for name, value := range want {
				if got[name] != value {
					t.Errorf("%s: systemd says %q, we say %q\nfile:\n%s", name, got[name], value, tc.text)
				}
			}
		})
	}
}

// unquoteShell undoes the generator's quoting: "..." with \ before " \ ` $.
func unquoteShell(s string) string {
	if len(s) < 2 || s[0] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
