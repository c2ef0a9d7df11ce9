package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// module is a Go module linked into the binary, and where its source is.
type module struct {
	path, dir string
}

// linkedModules lists the modules whose packages the binary for arch is
// built from (the main module and the standard library excepted), with
// their source directories in the module cache.
func linkedModules(src, arch string) ([]module, error) {
	cmd := exec.Command("go", "list", "-deps",
		"-f", "{{with .Module}}{{if not .Main}}{{.Path}}\t{{with .Replace}}{{.Dir}}{{else}}{{.Dir}}{{end}}{{end}}{{end}}", ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps: %w", exitDetail(err))
	}
	seen := map[string]bool{}
	var mods []module
	for _, line := range strings.Split(string(out), "\n") {
		path, dir, ok := strings.Cut(line, "\t")
		if !ok || seen[path] {
			continue
		}
		seen[path] = true
		mods = append(mods, module{path: path, dir: dir})
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].path < mods[j].path })
	return mods, nil
}

// licenseFile matches the names of license files at a module's root.
var licenseFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying)(\.md|\.txt)?$`)

// noticeFile matches the names of Apache-style NOTICE files.
var noticeFile = regexp.MustCompile(`(?i)^notice(\.md|\.txt)?$`)

// readTexts returns the contents of the files in dir whose names match.
func readTexts(dir string, name *regexp.Regexp) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && name.MatchString(e.Name()) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out = append(out, string(b))
		}
	}
	return out, nil
}

// licenses are the licenses recognised in license files, by Debian's short
// name (copyright-format 1.0), each with a phrase that only it contains.
var licenses = []struct {
	name   string
	phrase *regexp.Regexp
}{
	{"Apache-2.0", regexp.MustCompile(`Apache License,?\s+Version 2\.0`)},
	{"MPL-2.0", regexp.MustCompile(`Mozilla Public License,?\s+(Version|v\.) 2\.0`)},
	{"Expat", regexp.MustCompile(`Permission is hereby granted, free of charge, to any person obtaining`)},
	{"ISC", regexp.MustCompile(`Permission to use, copy, modify, and(/or)? distribute this software for any\s+purpose with or without fee`)},
	{"BSD-3-clause", regexp.MustCompile(`(?s)Redistribution and use in source and binary forms.*Neither the name`)},
	{"BSD-2-clause", regexp.MustCompile(`Redistribution and use in source and binary forms`)},
}

// commonLicenses are the licenses whose text Debian keeps in
// /usr/share/common-licenses; the others' texts are copied in full.
var commonLicenses = map[string]bool{"Apache-2.0": true, "MPL-2.0": true}

// classify names the licenses a license text grants, "A and B" when it
// grants several (parts of the module under each).
func classify(text string) (string, bool) {
	var names []string
	bsd3 := false
	for _, l := range licenses {
		if !l.phrase.MatchString(text) || (l.name == "BSD-2-clause" && bsd3) {
			continue
		}
		bsd3 = bsd3 || l.name == "BSD-3-clause"
		names = append(names, l.name)
	}
	return strings.Join(names, " and "), len(names) > 0
}

// copyrightLine matches a copyright statement at the start of a line:
// "Copyright (c) 2009 The Go Authors", "> Copyright © 2011 Russ Ross",
// "Copyright Amazon.com, Inc.", but not a license's template or its
// sentences about the copyright notice.
var copyrightLine = regexp.MustCompile(`(?m)^[^A-Za-z0-9\n]*Copyright(?:\s*(?:\([cC]\)|©))?\s+([0-9A-Z].*?)\s*$`)

// holders returns the copyright statements of the texts, without
// "Copyright", each once, in order.
func holders(texts ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range texts {
		for _, m := range copyrightLine.FindAllStringSubmatch(t, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	return out
}

// copyrightFile builds /usr/share/doc/secretsfs/copyright in Debian's
// machine-readable format: secretsfs itself, then, since the binary is a
// static Go binary, the Go standard library and every module linked into
// it, each with its copyright holders and license, read from their source
// (the module cache, GOROOT). A module whose license is not recognised is an
// error: its terms must be read before it is shipped.
func copyrightFile(src, goroot string, mods []module) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: secretsfs
Upstream-Contact: secretsfs maintainers <maintainers@secretsfs.invalid>
Source: https://github.com/secretsfs/secretsfs
Comment: /usr/bin/secretsfs is a static Go binary: besides secretsfs it
 contains the Go standard library and the Go modules below, each under its
 own license. Their Files fields name Go import paths, not files of this
 package.
`)
	used := map[string]bool{}
	// secretsfs itself.
	texts, err := readTexts(src, licenseFile)
	if err != nil {
		return nil, err
	}
	b.WriteString("\nFiles: *\n")
	if len(texts) == 0 {
		b.WriteString("Copyright: the secretsfs authors\nLicense: no-license-file\n" +
			" The secretsfs source tree has no license file (LICENSE at its root); once\n" +
			" it has one, this paragraph names its license.\n")
	} else if _, err := licensed(&b, "secretsfs", nil, texts, nil, used); err != nil {
		return nil, err
	}
	// The standard library.
	texts, err = readTexts(goroot, licenseFile)
	if err != nil {
		return nil, err
	}
	b.WriteString("\nFiles: std/*\nComment: the Go standard library and runtime\n")
	if _, err := licensed(&b, "the Go standard library ("+goroot+")", nil, texts, nil, used); err != nil {
		return nil, err
	}
	// A module that names no holder (a submodule of a repository of several,
	// like the AWS SDK's) has the holders of the module it is part of.
	holdersOf := map[string][]string{}
	for _, m := range mods {
		texts, err := readTexts(m.dir, licenseFile)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m.path, err)
		}
		notices, err := readTexts(m.dir, noticeFile)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m.path, err)
		}
		var inherited []string
		for p := path.Dir(m.path); p != "."; p = path.Dir(p) {
			if h, ok := holdersOf[p]; ok {
				inherited = h
				break
			}
		}
		if inherited == nil {
			inherited = []string{"the authors of " + m.path}
		}
		fmt.Fprintf(&b, "\nFiles: %s/*\n", m.path)
		holdersOf[m.path], err = licensed(&b, "module "+m.path+" ("+m.dir+")", inherited, texts, notices, used)
		if err != nil {
			return nil, err
		}
	}
	// The licenses whose text is on every Debian system.
	for _, name := range []string{"Apache-2.0", "MPL-2.0"} {
		if used[name] {
			fmt.Fprintf(&b, "\nLicense: %s\n On Debian systems, the full text of this license is in\n /usr/share/common-licenses/%s.\n", name, name)
		}
	}
	return b.Bytes(), nil
}

// licensed writes the Copyright and License fields (and a Comment with the
// NOTICE files, which the Apache license asks to pass on) of a Files
// paragraph, from the license texts of what: the full text unless it is one
// of the common licenses, which used records. The holders are those the
// texts name, else fallback; they are returned.
func licensed(b *bytes.Buffer, what string, fallback, texts, notices []string, used map[string]bool) ([]string, error) {
	if len(texts) == 0 {
		return nil, fmt.Errorf("%s: no license file (LICENSE, COPYING...): read its terms and add them to packaging/deb", what)
	}
	text := strings.Join(texts, "\n")
	name, ok := classify(text)
	if !ok {
		return nil, fmt.Errorf("%s: license not recognised: read its terms and add them to the licenses in packaging/deb/copyright.go", what)
	}
	who := holders(append(texts, notices...)...)
	if len(who) == 0 {
		who = fallback
	}
	if len(who) == 0 {
		who = []string{"the authors of " + what}
	}
	fmt.Fprintf(b, "Copyright: %s\n", strings.Join(who, "\n "))
	common := true
	for _, n := range strings.Split(name, " and ") {
		used[n] = used[n] || commonLicenses[n]
		common = common && commonLicenses[n]
	}
	fmt.Fprintf(b, "License: %s\n", name)
	if !common {
		b.WriteString(formatted(text))
	}
	if len(notices) > 0 {
		b.WriteString("Comment: NOTICE\n")
		b.WriteString(formatted(strings.Join(notices, "\n")))
	}
	return who, nil
}

// formatted turns text into continuation lines of a field: each line
// indented by one space, empty lines as " .".
func formatted(text string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(strings.Trim(text, "\n")))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" {
			b.WriteString(" .\n")
			continue
		}
		b.WriteString(" " + line + "\n")
	}
	return b.String()
}
