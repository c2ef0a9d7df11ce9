package mapping

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefect9_15_FilesOfARootDaemonMustBeRootsAndNotWritableByOthers: run
// as root, the daemon refuses a mapping file or a template_file that
// another user owns or that group or others may write (whoever can write it
// chooses which secrets go where, and a template can send them anywhere),
// naming the file and the fix, as sshd does with its files.
func TestDefect9_15_FilesOfARootDaemonMustBeRootsAndNotWritableByOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to chown files to another user")
	}
	write := func(t *testing.T, dir, name, text string, mode os.FileMode, uid int) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const entry = "files:\n  - path: a\n    secret: b\n"
	cases := []struct {
		name string
		mode os.FileMode
		uid  int
		want string
	}{
		{"world-writable", 0o666, 0, "is writable by group or others (mode 0666) and secretsfs runs as root; run chmod go-w %s"},
		{"group-writable", 0o620, 0, "is writable by group or others (mode 0620) and secretsfs runs as root; run chmod go-w %s"},
		{"another user's", 0o600, 1000, "is owned by uid 1000, not root, and secretsfs runs as root; run chown root %s"},
	}
	for _, c := range cases {
		t.Run("mapping file "+c.name, func(t *testing.T) {
			p := write(t, t.TempDir(), "m.yaml", entry, c.mode, c.uid)
			want := p + ": " + strings.ReplaceAll(c.want, "%s", p)
			if _, err := Load(p); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
			// An ordinary user's daemon reads its own files as it likes.
			if _, err := loadAs(p, 1000); err != nil {
				t.Fatalf("as uid 1000: %v", err)
			}
		})
		t.Run("template file "+c.name, func(t *testing.T) {
			dir := t.TempDir()
			tf := write(t, dir, "a.tmpl", `{{ secret "b" }}`, c.mode, c.uid)
			p := write(t, dir, "m.yaml", "files:\n  - path: a\n    template_file: a.tmpl\n", 0o600, 0)
			want := p + ":3: files[0].template_file: " + tf + " " + strings.ReplaceAll(c.want, "%s", tf)
			if _, err := Load(p); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
		})
	}
	// root's own files, readable by all, are fine; so is a link to one.
	dir := t.TempDir()
	p := write(t, dir, "m.yaml", "files:\n  - path: a\n    template_file: a.tmpl\n", 0o644, 0)
	write(t, dir, "a.tmpl", `{{ secret "b" }}`, 0o444, 0)
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p, link} {
		if _, err := Load(f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}
