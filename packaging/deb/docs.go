package main

import (
	"crypto/md5"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// manPageName matches the files "secretsfs gen man DIR" writes: NAME.SECTION.
var manPageName = regexp.MustCompile(`^(.+)\.([1-9])$`)

// generatedManPages runs "secretsfs gen man DIR" and returns every page it
// wrote, compressed, at /usr/share/man/manN/NAME.N.gz.
func generatedManPages(gen, dir string) ([]file, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := exec.Command(gen, "gen", "man", dir).Output(); err != nil {
		return nil, fmt.Errorf("secretsfs gen man %s: %w", dir, exitDetail(err))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []file
	for _, e := range entries {
		m := manPageName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("secretsfs gen man wrote %s, not a NAME.SECTION page", e.Name())
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		gz, err := gzipped(data)
		if err != nil {
			return nil, err
		}
		out = append(out, file{path: "/usr/share/man/man" + m[2] + "/" + e.Name() + ".gz", mode: 0o644, data: gz})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("secretsfs gen man %s wrote no page", dir)
	}
	return out, nil
}

// manPageLinks gives each program the package installs as a symbolic link
// (mount.secretsfs -> mount.fuse.secretsfs) the manual page of its target,
// as a link too, when the target has one.
func manPageLinks(files []file) []file {
	pages := map[string]string{} // program -> its page's path
	for _, f := range files {
		if m := manPageName.FindStringSubmatch(strings.TrimSuffix(path.Base(f.path), ".gz")); m != nil && !f.link {
			pages[m[1]] = f.path
		}
	}
	var out []file
	for _, f := range files {
		dir := path.Dir(f.path)
		if !f.link || !(strings.HasSuffix(dir, "/bin") || strings.HasSuffix(dir, "/sbin")) {
			continue
		}
		if _, own := pages[path.Base(f.path)]; own {
			continue // a program with a page of its own (the fstab helper)
		}
		page, ok := pages[path.Base(string(f.data))]
		if !ok {
			continue
		}
		name := path.Base(f.path) + strings.TrimPrefix(path.Base(page), path.Base(string(f.data)))
		out = append(out, file{path: path.Join(path.Dir(page), name), link: true, data: []byte(path.Base(page))})
	}
	return out
}

// docFiles are the files Debian requires of every package under
// /usr/share/doc/secretsfs, and the lintian overrides for what is
// intended.
func docFiles(o options) ([]file, error) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", exitDetail(err))
	}
	mods, err := linkedModules(o.Src, o.Arch)
	if err != nil {
		return nil, err
	}
	copyright, err := copyrightFile(o.Src, strings.TrimSpace(string(goroot)), mods)
	if err != nil {
		return nil, err
	}
	date, err := buildDate()
	if err != nil {
		return nil, err
	}
	// A version without a Debian revision ("1.2.3", not "1.2.3-1") makes a
	// native package, whose changelog has the plain name.
	name := "changelog.gz"
	if strings.Contains(o.Version, "-") {
		name = "changelog.Debian.gz"
	}
	changelog, err := gzipped([]byte(fmt.Sprintf(`secretsfs (%s) unstable; urgency=medium

  * Built from the secretsfs sources; the changes are in their history:
    https://github.com/secretsfs/secretsfs/commits

 -- secretsfs maintainers <maintainers@secretsfs.invalid>  %s
`, o.Version, date.Format(time.RFC1123Z))))
	if err != nil {
		return nil, err
	}
	return []file{
		{path: "/usr/share/doc/secretsfs/copyright", mode: 0o644, data: copyright},
		{path: "/usr/share/doc/secretsfs/" + name, mode: 0o644, data: changelog},
		{path: "/usr/share/lintian/overrides/secretsfs", mode: 0o644, data: []byte(lintianOverrides)},
	}, nil
}

// buildDate is the changelog's date: SOURCE_DATE_EPOCH when set (for
// reproducible builds), else now.
func buildDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now().UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// lintianOverrides are the lintian tags the package carries on purpose.
const lintianOverrides = `# Go programs are statically linked (CGO_ENABLED=0): the binary needs no C
# library, so the same file runs on any distribution and in the distroless
# container image.
secretsfs: statically-linked-binary [usr/bin/secretsfs]
# The settings file may come to hold AWS credentials: readable by root only.
secretsfs: non-standard-file-perm 0600 != 0644 [etc/secretsfs/secretsfs.env]
`

// md5sums is DEBIAN/md5sums (for dpkg --verify, debsums): the checksum of
// each regular file under root but the conffile, whose checksum dpkg keeps
// itself.
func md5sums(root string) ([]byte, error) {
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || filepath.ToSlash(rel) == strings.TrimPrefix(conffile, "/") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%x  %s\n", md5.Sum(data), filepath.ToSlash(rel))
		return nil
	})
	return []byte(b.String()), err
}
