// Command deb builds the secretsfs Debian package with dpkg-deb:
//
//	go run ./packaging/deb -version 1.2.3 -out dist
//
// It builds a static binary (CGO_ENABLED=0) whose version string is set with
// -ldflags "-X main.version=...", and packs it with the systemd units, the
// /etc/fstab mount helper, an example settings file (a conffile), the man
// pages and shell completions the binary itself generates ("secretsfs gen"),
// and what Debian asks of every package: the copyright file (of secretsfs
// and of every Go module linked in, read from the module cache), a
// changelog, md5sums, and lintian overrides for what is intended. It prints
// the path of the .deb; lintian reports no error on it.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// options are the command's flags.
type options struct {
	Version string // Debian version, also the binary's version string
	Arch    string // GOARCH, which is also the Debian architecture name for amd64, arm64, 386...
	Out     string // directory the .deb is written to
	Src     string // module root (the directory of go.mod)
}

func main() {
	var o options
	flag.StringVar(&o.Version, "version", "0.0.0~dev", "package `VERSION` (Debian syntax, starts with a digit)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "target `GOARCH`")
	flag.StringVar(&o.Out, "out", "dist", "output `DIR`")
	flag.StringVar(&o.Src, "src", "", "module root (default: found from the working directory)")
	flag.Parse()
	if o.Src == "" {
		src, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "deb:", err)
			os.Exit(1)
		}
		o.Src = src
	}
	deb, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
	fmt.Println(deb)
}

// moduleRoot walks up from the working directory to the directory of go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; give -src")
		}
		dir = parent
	}
}

// conffile is the package's only configuration file.
const conffile = "/etc/secretsfs/secretsfs.env"

// debVersion is what dpkg accepts as an upstream version without epoch.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// file is one file of the package.
type file struct {
	path string      // absolute path on the target system
	mode fs.FileMode // permissions
	data []byte      // contents; for a symlink, its target
	link bool
}

// build builds the package and returns its path.
func build(o options) (string, error) {
	if !debVersion.MatchString(o.Version) {
		return "", fmt.Errorf("-version %q: want a Debian version starting with a digit, e.g. 1.2.3 or 0.0.0~git20260101", o.Version)
	}
	stage, err := os.MkdirTemp("", "secretsfs-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")

	// The static binary.
	bin := filepath.Join(root, "usr", "bin", "secretsfs")
	if err := goBuild(o.Src, o.Arch, o.Version, bin); err != nil {
		return "", err
	}
	// The man page and completions come from the binary; for a foreign
	// architecture from a host build of the same source.
	gen := bin
	if o.Arch != runtime.GOARCH {
		gen = filepath.Join(stage, "host-secretsfs")
		if err := goBuild(o.Src, runtime.GOARCH, o.Version, gen); err != nil {
			return "", err
		}
	}
	generated := map[string][]byte{}
	for _, kind := range []string{"bash", "zsh", "fish"} {
		out, err := exec.Command(gen, "gen", kind).Output()
		if err != nil {
			return "", fmt.Errorf("secretsfs gen %s: %w", kind, exitDetail(err))
		}
		generated[kind] = out
	}
	manPages, err := generatedManPages(gen, filepath.Join(stage, "man"))
	if err != nil {
		return "", err
	}

	read := func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(o.Src, "packaging", rel)) }
	files := []file{
		{path: "/usr/share/bash-completion/completions/secretsfs", mode: 0o644, data: generated["bash"]},
		{path: "/usr/share/zsh/vendor-completions/_secretsfs", mode: 0o644, data: generated["zsh"]},
		{path: "/usr/share/fish/vendor_completions.d/secretsfs.fish", mode: 0o644, data: generated["fish"]},
		// The mount(8) helpers are the binary itself, which acts as the
		// helper when run under one of these names.
		{path: "/sbin/mount.fuse.secretsfs", link: true, data: []byte("/usr/bin/secretsfs")},
		{path: "/sbin/mount.secretsfs", link: true, data: []byte("mount.fuse.secretsfs")},
	}
	for _, f := range []struct {
		src, dst string
		mode     fs.FileMode
	}{
		{"systemd/secretsfs.service", "/lib/systemd/system/secretsfs.service", 0o644},
		{"systemd/secretsfs@.service", "/lib/systemd/system/secretsfs@.service", 0o644},
		// It may come to hold credentials.
		{"systemd/secretsfs.env", conffile, 0o600},
	} {
		data, err := read(f.src)
		if err != nil {
			return "", err
		}
		files = append(files, file{path: f.dst, mode: f.mode, data: data})
	}
	files = append(files, manPages...)
	files = append(files, manPageLinks(files)...)
	docs, err := docFiles(o)
	if err != nil {
		return "", err
	}
	files = append(files, docs...)
	for _, f := range files {
		if err := write(root, f); err != nil {
			return "", err
		}
	}

	size, err := installedSizeKiB(root)
	if err != nil {
		return "", err
	}
	sums, err := md5sums(root) // before DEBIAN/ is written
	if err != nil {
		return "", err
	}
	control := fmt.Sprintf(`Package: secretsfs
Version: %s
Architecture: %s
Maintainer: secretsfs maintainers <maintainers@secretsfs.invalid>
Installed-Size: %d
Depends: fuse3
Section: admin
Priority: optional
Homepage: https://github.com/secretsfs/secretsfs
Description: AWS Secrets Manager secrets as read-only files (FUSE)
 secretsfs mounts AWS Secrets Manager as a read-only filesystem: directories
 are secret names, files are version stages and the keys of JSON secrets.
 Reads come from an in-memory cache refreshed in the background, so a
 rotation shows through the same path and inode; no secret is written to
 disk. Includes systemd units (secretsfs.service, secretsfs@.service) and
 the mount helper for /etc/fstab (type fuse.secretsfs).
`, o.Version, o.Arch, size)
	meta := []file{
		{path: "/DEBIAN/control", mode: 0o644, data: []byte(control)},
		{path: "/DEBIAN/conffiles", mode: 0o644, data: []byte(conffile + "\n")},
		{path: "/DEBIAN/md5sums", mode: 0o644, data: sums},
		{path: "/DEBIAN/postinst", mode: 0o755, data: []byte(postinst)},
		{path: "/DEBIAN/prerm", mode: 0o755, data: []byte(prerm)},
		{path: "/DEBIAN/postrm", mode: 0o755, data: []byte(postrm)},
	}
	for _, f := range meta {
		if err := write(root, f); err != nil {
			return "", err
		}
	}

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	deb, err := filepath.Abs(filepath.Join(o.Out, fmt.Sprintf("secretsfs_%s_%s.deb", o.Version, o.Arch)))
	if err != nil {
		return "", err
	}
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, deb)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb --build: %w: %s", err, out)
	}
	return deb, nil
}

// goBuild builds a static secretsfs binary at out.
func goBuild(src, arch, version, out string) error {
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, out)
	}
	return nil
}

// write puts f under root, creating its directories (0755).
func write(root string, f file) error {
	dst := filepath.Join(root, filepath.FromSlash(f.path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if f.link {
		return os.Symlink(string(f.data), dst)
	}
	if err := os.WriteFile(dst, f.data, f.mode); err != nil {
		return err
	}
	return os.Chmod(dst, f.mode) // regardless of the umask
}

// gzipped compresses like gzip -9n: no file name or time, so the result
// depends on the content only.
func gzipped(data []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// installedSizeKiB is the Installed-Size field: the files' sizes in KiB.
func installedSizeKiB(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	return (total + 1023) / 1024, err
}

// exitDetail adds a failed command's stderr to its error.
func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// The maintainer scripts handle the units as dh_installsystemd does for
// units installed disabled and not started (--no-enable --no-start
// --no-stop-on-upgrade): the service needs settings (region, secrets) first,
// and restarting it on upgrade would drop the mount under running programs
// (restart it when convenient). deb-systemd-helper records which symlinks
// enabling the unit makes, whoever enables it, so that purge removes them;
// systemctl itself is only asked to reload.

const postinst = `#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
	if command -v deb-systemd-helper >/dev/null; then
		if deb-systemd-helper debian-installed secretsfs.service; then
			# Undo the mask of a removal; keep an enabled unit enabled.
			deb-systemd-helper unmask secretsfs.service >/dev/null || true
			if deb-systemd-helper --quiet was-enabled secretsfs.service; then
				deb-systemd-helper enable secretsfs.service >/dev/null || true
			fi
		fi
		deb-systemd-helper update-state secretsfs.service >/dev/null || true
	fi
	if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
`

// prerm stops, on removal only, every secretsfs run from the packaged binary,
// so that none keeps serving from a deleted file: the units, then the
// daemons of /etc/fstab mounts and any started by hand (found by their
// executable), which unmount on SIGTERM, lazily while files are open, and
// exit. Mounts served by other secretsfs binaries are left alone.
const prerm = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ]; then
	if [ -d /run/systemd/system ]; then
		deb-systemd-invoke stop secretsfs.service 'secretsfs@*.service' >/dev/null || true
	fi
	start-stop-daemon --stop --quiet --oknodo --exec /usr/bin/secretsfs --retry TERM/30/KILL/5 || true
fi
`

// postrm masks the unit while the package is removed but not purged (as
// dh_installsystemd does), and on purge removes every symlink that enabled
// a unit: those deb-systemd-helper recorded for secretsfs.service, and the
// instances of secretsfs@.service the administrator enabled.
const postrm = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
	deb-systemd-helper mask secretsfs.service >/dev/null || true
fi
if [ "$1" = purge ]; then
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper purge secretsfs.service >/dev/null || true
		deb-systemd-helper unmask secretsfs.service >/dev/null || true
	fi
	for link in /etc/systemd/system/*.wants/secretsfs@*.service; do
		if [ -L "$link" ]; then
			rm -f "$link"
		fi
	done
fi
`
