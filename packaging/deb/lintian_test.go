package main

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestIssue10_07_LintianReportsNoError: lintian, Debian's package checker,
// finds no error in the package. It is skipped without lintian unless
// SECRETSFS_TEST_REQUIRE_LINTIAN is set (CI).
func TestIssue10_07_LintianReportsNoError(t *testing.T) {
	needPackage(t)
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		if os.Getenv("SECRETSFS_TEST_REQUIRE_LINTIAN") != "" {
			t.Fatal("lintian required but not installed (apt-get install lintian)")
		}
		t.Skip("lintian is not installed")
	}
	// --no-cfg: no user or site profile changes the verdict; overrides the
	// package ships apply.
	out, err := exec.Command(lintian, "--no-cfg", "--info", pkg.deb).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	// Exit status 1 is "a tag of error severity"; anything else is lintian
	// failing to check.
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("lintian: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") {
			t.Errorf("lintian error: %s", line)
		}
	}
}

// The copyright file is machine-readable (DEP-5) and covers secretsfs, the
// Go standard library and every module the packaged binary was built from
// (its build information is the independent record), each with a holder
// and a license whose text it carries or Debian ships; no path of the
// build machine leaks into it.
func TestIssue10_07_CopyrightCoversEveryLinkedModule(t *testing.T) {
	needPackage(t)
	b, err := os.ReadFile(filepath.Join(pkg.root, "usr/share/doc/secretsfs/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("/pkg/mod/")) {
		t.Error("the copyright file names a module cache path")
	}
	paras := strings.Split(strings.TrimSpace(string(b)), "\n\n")
	if !strings.HasPrefix(paras[0], "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Fatalf("header paragraph:\n%s", paras[0])
	}
	files := map[string]map[string]string{} // Files pattern -> field -> value
	defined := map[string]bool{}            // licenses with their text
	for _, p := range paras[1:] {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(p, "\n") {
			if strings.HasPrefix(line, " ") {
				if last == "" {
					t.Fatalf("a continuation line opens a paragraph:\n%s", p)
				}
				fields[last] += "\n" + line
				continue
			}
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("odd line %q", line)
			}
			fields[k], last = v, k
		}
		name, text, _ := strings.Cut(fields["License"], "\n")
		if name == "" {
			t.Errorf("a paragraph without a license:\n%s", p)
		}
		if text != "" {
			defined[name] = true
		}
		if pattern, ok := fields["Files"]; ok {
			if fields["Copyright"] == "" {
				t.Errorf("%s: no Copyright", pattern)
			}
			files[pattern] = fields
		}
	}
	for pattern, f := range files {
		name, _, _ := strings.Cut(f["License"], "\n")
		for _, n := range strings.Split(name, " and ") {
			if !defined[n] && !defined[name] {
				t.Errorf("%s: license %s has no text", pattern, n)
			}
		}
	}
	info, err := buildinfo.ReadFile(filepath.Join(pkg.root, "usr/bin/secretsfs"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"*", "std/*"}
	for _, dep := range info.Deps {
		want = append(want, dep.Path+"/*")
	}
	for _, pattern := range want {
		if files[pattern] == nil {
			t.Errorf("no Files: %s paragraph", pattern)
		}
	}
	if len(files) != len(want) {
		t.Errorf("%d Files paragraphs, want %d (%v)", len(files), len(want), want)
	}
	if !strings.HasPrefix(files["github.com/hanwen/go-fuse/v2/*"]["License"], "BSD-3-clause\n") ||
		files["github.com/aws/aws-sdk-go-v2/service/secretsmanager/*"]["License"] != "Apache-2.0" ||
		!strings.Contains(files["github.com/aws/aws-sdk-go-v2/service/secretsmanager/*"]["Copyright"], "Amazon.com") {
		t.Errorf("go-fuse: %q; secretsmanager: %q", files["github.com/hanwen/go-fuse/v2/*"], files["github.com/aws/aws-sdk-go-v2/service/secretsmanager/*"])
	}
}

// A native version (no Debian revision) gets changelog.gz, another
// changelog.Debian.gz, as lintian expects; either names the version.
func TestIssue10_07_ChangelogName(t *testing.T) {
	needPackage(t)
	src, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	for version, want := range map[string]string{"1.2.3": "changelog.gz", "1.2.3-1": "changelog.Debian.gz",
		"0.0.0~git20260101.0123456789ab-1": "changelog.Debian.gz"} {
		docs, err := docFiles(options{Version: version, Arch: runtime.GOARCH, Src: src})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, f := range docs {
			if path.Dir(f.path) != "/usr/share/doc/secretsfs" || !strings.HasPrefix(path.Base(f.path), "changelog") {
				continue
			}
			r, err := gzip.NewReader(bytes.NewReader(f.data))
			if err != nil {
				t.Fatal(err)
			}
			text, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			found = path.Base(f.path) == want
			for _, line := range strings.Split(string(text), "\n") {
				if len(line) > 80 && !strings.HasPrefix(line, " -- ") {
					t.Errorf("version %s: a changelog line longer than 80 characters: %q", version, line)
				}
			}
			if !found || !strings.HasPrefix(string(text), "secretsfs ("+version+") ") ||
				!strings.Contains(string(text), "  Thu, 01 Jan 2026 00:00:00 +0000\n") {
				t.Errorf("version %s: %s:\n%s", version, f.path, text)
			}
		}
		if !found {
			t.Errorf("version %s: no %s", version, want)
		}
	}
}

// A program installed as a link to another gets that program's manual page,
// as a link, so that lintian finds a page for each (no-manual-page).
func TestIssue10_07_ManPageLinks(t *testing.T) {
	files := []file{
		{path: "/sbin/mount.fuse.secretsfs", mode: 0o755, data: []byte("#!/bin/sh\n")},
		{path: "/sbin/mount.secretsfs", link: true, data: []byte("mount.fuse.secretsfs")},
		{path: "/usr/bin/other", link: true, data: []byte("nopage")},
		{path: "/usr/share/man/man8/mount.fuse.secretsfs.8.gz", mode: 0o644, data: []byte("gz")},
		{path: "/usr/share/man/man1/secretsfs.1.gz", mode: 0o644, data: []byte("gz")},
	}
	got := manPageLinks(files)
	if len(got) != 1 || got[0].path != "/usr/share/man/man8/mount.secretsfs.8.gz" || !got[0].link || string(got[0].data) != "mount.fuse.secretsfs.8.gz" {
		t.Fatalf("manPageLinks = %+v", got)
	}
}

// DEBIAN/md5sums has the checksum of every installed file but the conffile.
func TestIssue10_07_MD5Sums(t *testing.T) {
	needPackage(t)
	sums := dpkgDeb(t, "--info", pkg.deb, "md5sums")
	bin, err := os.ReadFile(filepath.Join(pkg.root, "usr/bin/secretsfs"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sums, fmt.Sprintf("%x  usr/bin/secretsfs\n", md5.Sum(bin))) {
		t.Errorf("md5sums lacks the binary's checksum:\n%s", sums)
	}
	if strings.Contains(sums, "etc/secretsfs") || strings.Contains(sums, "DEBIAN") {
		t.Errorf("md5sums lists the conffile or the control files:\n%s", sums)
	}
}
