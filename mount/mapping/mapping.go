package mapping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a parsed mapping file.
type Config struct {
	// Source is the file's path as given, for messages.
	Source string
	// Settings are the top-level settings, in file order; the caller maps
	// them to its flags (see Setting).
	Settings []Setting
	// Files are the mapped files, in file order (files: first, then
	// objects:).
	Files []File
	// OnChange is the top-level on_change, for every file that has none of
	// its own; nil when not given.
	OnChange *OnChange
}

// Setting is a top-level key that is not files, objects or on_change: a
// mount flag's name with "_" for "-" and its value(s).
type Setting struct {
	Name   string   // as written, e.g. refresh_interval
	Flag   string   // the flag it stands for, e.g. refresh-interval
	Values []string // one for a scalar, several for a list
	Line   int
}

// Ref names a value a file reads: a secret and a stage (empty: the default
// stage) or a version id.
type Ref struct {
	SecretID  string
	Stage     string
	VersionID string
}

// Fetch returns the value a Ref names. Errors should match fs.ErrNotExist
// (ENOENT) or fs.ErrPermission (EACCES) where they apply.
type Fetch func(ctx context.Context, ref Ref) ([]byte, error)

// File is one mapped file.
type File struct {
	// Path is where the file is in the mount: relative, "/"-separated, clean.
	Path string
	// Where names the entry in messages: files[2], objects[0].jmesPath[1].
	Where string
	// Line is the entry's line in Source.
	Line   int
	Source string

	// Ref is what a non-template file reads.
	Ref Ref
	// Key selects a value inside a JSON secret; nil for the whole value.
	Key    KeyPath
	Format Format
	// Template renders the file instead; Ref, Key and Format are unset then.
	Template *Template

	// Mode is the permission bits; zero means the mount's file mode.
	Mode os.FileMode
	// UID and GID own the file; nil means the mount's.
	UID, GID *uint32
	// OnChange is the entry's own on_change, nil if none (the top-level one
	// then applies: see Config.OnChangeOf).
	OnChange *OnChange
}

// SecretIDs are the secrets the file reads: a change to any of them can
// change its content.
func (f File) SecretIDs() []string {
	if f.Template != nil {
		return f.Template.SecretIDs()
	}
	return []string{f.Ref.SecretID}
}

// Source describes where the content comes from, for tables and logs.
func (f File) Describe() string {
	if f.Template != nil {
		return "template(" + strings.Join(f.Template.ids, ", ") + ")"
	}
	s := f.Ref.SecretID
	switch {
	case f.Ref.VersionID != "":
		s += "@" + f.Ref.VersionID
	case f.Ref.Stage != "":
		s += ":" + f.Ref.Stage
	}
	if f.Key != nil {
		s += " key " + f.Key.String()
	}
	if f.Format != "" && f.Format != FormatRaw {
		s += " as " + string(f.Format)
	}
	return s
}

// At is "SOURCE:LINE: WHERE", the start of a message about the entry.
func (f File) At() string { return fmt.Sprintf("%s:%d: %s", f.Source, f.Line, f.Where) }

// Render computes the file's content. A template failure is a
// *TemplateError; other errors wrap fetch's or say why the value cannot be
// shown in the file's format. No error contains a value.
func (f File) Render(ctx context.Context, fetch Fetch) ([]byte, error) {
	if f.Template != nil {
		return f.Template.render(ctx, fetch)
	}
	data, err := fetch(ctx, f.Ref)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if f.Key != nil {
		raw, err = lookupKey(data, f.Key)
		clear(data)
		if err != nil {
			var nk errNoKey
			if errors.As(err, &nk) {
				return nil, fmt.Errorf("secret %q %s: %w", f.Ref.SecretID, refErr(f.Ref, err), os.ErrNotExist)
			}
			return nil, fmt.Errorf("secret %q %s, so key %s cannot be read", f.Ref.SecretID, refErr(f.Ref, err), f.Key)
		}
		data = nil
	}
	out, err := f.Format.apply(data, raw)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", f.Ref.SecretID, err)
	}
	return out, nil
}

// OnChangeOf returns the on_change that applies to a file: its own, else the
// top-level one (nil when neither is given).
func (c *Config) OnChangeOf(f File) *OnChange {
	if f.OnChange != nil {
		return f.OnChange
	}
	return c.OnChange
}

// MaxFileSize is the largest mapping file, and the largest template file,
// that is read: 1 MiB. Larger ones are refused before they are parsed, so
// that no file costs more than a bounded time and memory to check.
const MaxFileSize = 1 << 20

// refused is readFile's refusal of a file: what is wrong with it and the
// fix, to follow the file's name.
type refused struct{ reason string }

func (e *refused) Error() string { return e.reason }

func tooLarge() error {
	return &refused{fmt.Sprintf("is larger than 1 MiB (%d bytes), the limit for a mapping or template file; check that it is the file meant", MaxFileSize)}
}

// readFile reads a mapping or template file, refusing one over MaxFileSize
// without reading the rest of it. When euid is root it also refuses a file
// that another user owns or that group or others may write, as sshd does:
// whoever can write the file decides which secrets are served where, and a
// template can put them into any file.
func readFile(path string, euid int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if euid == 0 {
		fi, err := f.Stat() // the file opened, whatever links led to it
		if err != nil {
			return nil, err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			return nil, &refused{fmt.Sprintf("is owned by uid %d, not root, and secretsfs runs as root; run chown root %s", st.Uid, path)}
		}
		if m := fi.Mode().Perm(); m&0o022 != 0 {
			return nil, &refused{fmt.Sprintf("is writable by group or others (mode %04o) and secretsfs runs as root; run chmod go-w %s", uint32(m), path)}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		clear(data)
		return nil, tooLarge()
	}
	return data, nil
}

// Load reads and parses a mapping file. When the process runs as root, the
// file and its template files must be root's and not writable by group or
// others.
func Load(path string) (*Config, error) { return loadAs(path, os.Geteuid()) }

func loadAs(path string, euid int) (*Config, error) {
	data, err := readFile(path, euid)
	var r *refused
	switch {
	case errors.As(err, &r):
		return nil, fmt.Errorf("%s: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("mapping file: %w", err)
	}
	return parseAs(path, data, euid)
}

// parser collects the problems of one file.
type parser struct {
	source string
	dir    string // of the source, for template_file
	errs   []string
	// pending are files read ahead (objects of a SecretProviderClass).
	pending []File
	euid    int // the process's, for readFile
	// yamlRead counts the bytes handed to the YAML parser, the work of
	// decodeYAML.
	yamlRead int
	// inline: the document comes from a less trusted party (ParseInline).
	inline bool
}

func (p *parser) errorf(line int, where, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if where != "" {
		msg = where + ": " + msg
	}
	p.errs = append(p.errs, fmt.Sprintf("%s:%d: %s", p.source, line, msg))
}

// Parse parses a mapping file's content; source names it in messages and
// locates template_file paths. It returns every problem found, one per line.
func Parse(source string, data []byte) (*Config, error) { return parseAs(source, data, os.Geteuid()) }

// ParseInline parses a mapping document given inline by a party less
// trusted than the host (a pod's volume attribute, for the CSI driver):
// files: and objects: only. What would reach beyond the mount is refused:
// template_file (a file of the host), on_change (a command or signal on the
// host) and settings (the caller takes them otherwise).
func ParseInline(source string, data []byte) (*Config, error) {
	return (&parser{source: source, euid: os.Geteuid(), inline: true}).document(data)
}

func parseAs(source string, data []byte, euid int) (*Config, error) {
	return (&parser{source: source, dir: filepath.Dir(source), euid: euid}).document(data)
}

func (p *parser) document(data []byte) (*Config, error) {
	source := p.source
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w", source, tooLarge())
	}
	cfg := &Config{Source: source}
	var doc yaml.Node
	dec, err := p.decodeYAML(data, 0, &doc)
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:1: the file is empty; give files: or objects:", source)
	}
	if err != nil {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s:%d: a second YAML document; give one document only", source, extra.Line)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of settings, files: and objects:", source, root.Line)
	}
	// A whole SecretProviderClass: take its spec.parameters.
	if kind := mapGet(root, "kind"); kind != nil && kind.Value == "SecretProviderClass" {
		var err error
		if root, err = p.secretProviderClass(root); err != nil {
			return nil, err
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "files":
			if v.Kind != yaml.SequenceNode {
				p.errorf(v.Line, "files", "must be a list of entries (- path: ...)")
				continue
			}
			for j, e := range v.Content {
				if f, ok := p.file(e, fmt.Sprintf("files[%d]", j)); ok {
					cfg.Files = append(cfg.Files, f)
				}
			}
		case "objects":
			cfg.Files = append(cfg.Files, p.objects(v, "_")...)
		case "on_change":
			if p.inline {
				p.errorf(k.Line, "on_change", "is not allowed here: it would run on the host; remove it")
				continue
			}
			cfg.OnChange = p.onChange(v, "on_change")
		default:
			if p.inline {
				p.errorf(k.Line, k.Value, "is not allowed here; give files: or objects: only, and settings as attributes of their own")
				continue
			}
			if s, ok := p.setting(k, v); ok {
				cfg.Settings = append(cfg.Settings, s)
			}
		}
	}
	cfg.Files = append(cfg.Files, p.pending...)
	p.checkPaths(cfg.Files)
	if len(p.errs) > 0 {
		return nil, errors.New(strings.Join(p.errs, "\n"))
	}
	return cfg, nil
}

// decodeYAML decodes the first YAML document of data. A syntax error is
// returned as "SOURCE:LINE: malformed YAML: ...", lines counted from
// offset; the end of the input is io.EOF.
//
// The YAML library names the line where the enclosing block starts, or
// none, so the line is found by what the parse read: data is handed to it a
// line at a time, and the line it was reading when it failed is where the
// problem shows, unless the text before that line fails the same way (a
// quote or bracket left open further up). Then the line is the first whose
// text up to there fails the same way: the one the library names, or
// searched for by bisection. That is two parses of the file in most
// cases, O(n log n) work at worst, where a search line by line costs O(n²).
func (p *parser) decodeYAML(data []byte, offset int, out *yaml.Node) (*yaml.Decoder, error) {
	r := &lineReader{data: data, read: &p.yamlRead}
	dec := yaml.NewDecoder(r)
	err := dec.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return dec, err
	}
	msg, named := splitYAMLError(err)
	ends := lineEnds(data)
	failsAt := func(k int) bool { // the first k lines fail with msg
		if k < 1 {
			return false
		}
		var n yaml.Node
		e := yaml.NewDecoder(&lineReader{data: data[:ends[k-1]], read: &p.yamlRead}).Decode(&n)
		if e == nil || errors.Is(e, io.EOF) {
			return false
		}
		m, _ := splitYAMLError(e)
		return m == msg
	}
	first := func(k int) bool { return failsAt(k) && !failsAt(k-1) }
	line := max(1, min(r.lines, len(ends)))
	switch {
	case !failsAt(line - 1):
	// The library counts the line it names from 1 or, for some errors,
	// from 0.
	case named < line && first(named):
		line = named
	case named+1 < line && first(named+1):
		line = named + 1
	default:
		line = 1 + sort.Search(line-1, func(i int) bool { return failsAt(i + 1) })
	}
	return nil, fmt.Errorf("%s:%d: malformed YAML: %s", p.source, line+offset, msg)
}

// lineEnds returns the offset after each line of data.
func lineEnds(data []byte) []int {
	var ends []int
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	return ends
}

// lineReader hands its data out at most a line per Read and counts the
// lines it has started on, and the bytes it has handed out in *read.
type lineReader struct {
	data  []byte
	off   int
	lines int
	read  *int
}

func (r *lineReader) Read(b []byte) (int, error) {
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	if r.off == 0 || r.data[r.off-1] == '\n' {
		r.lines++
	}
	end := len(r.data)
	if i := bytes.IndexByte(r.data[r.off:], '\n'); i >= 0 {
		end = r.off + i + 1
	}
	n := copy(b, r.data[r.off:end])
	r.off += n
	*r.read += n
	return n, nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): `)

func splitYAMLError(err error) (msg string, line int) {
	msg, line = strings.TrimPrefix(err.Error(), "yaml: "), 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return msg, line
}

// mapGet returns the value of a key of a mapping node, or nil.
func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// field returns the scalar text of one field of a mapping read by fields
// (an error recorded if it is not a scalar) and its node; "", nil when the
// field is absent.
func (p *parser) field(fs map[string]*yaml.Node, where, name string) (string, *yaml.Node) {
	v := fs[name]
	if v == nil {
		return "", nil
	}
	s, _ := p.scalar(v, where+"."+name)
	return s, v
}

// fields checks a mapping's keys against the known ones, reporting unknown
// and repeated keys, and returns the values by key.
func (p *parser) fields(n *yaml.Node, where string, known ...string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, where, "must be a mapping of %s", strings.Join(known, ", "))
		return nil, false
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch {
		case !slices.Contains(known, k.Value):
			hint := ""
			if s := closest(k.Value, known); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			p.errorf(k.Line, where, "unknown field %q%s; the fields are %s", k.Value, hint, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.errorf(k.Line, where, "field %q given twice", k.Value)
		default:
			v := n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				v.Line = k.Line // a problem with a block is reported at its key
			}
			out[k.Value] = v
		}
	}
	return out, true
}

// closest suggests a known name for a misspelt one: the same but for case
// and separators, or at most two edits away.
func closest(s string, known []string) string {
	norm := func(x string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(x)) }
	best, bestD := "", 3
	for _, k := range known {
		if norm(k) == norm(s) {
			return k
		}
		if d := editDistance(norm(k), norm(s)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// scalar reads a scalar field as text.
func (p *parser) scalar(n *yaml.Node, where string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n.Line, where, "must be a single value, not a list or mapping")
		return "", false
	}
	return n.Value, true
}

func (p *parser) setting(k, v *yaml.Node) (Setting, bool) {
	s := Setting{Name: k.Value, Flag: strings.ReplaceAll(k.Value, "_", "-"), Line: k.Line}
	switch v.Kind {
	case yaml.ScalarNode:
		s.Values = []string{v.Value}
	case yaml.SequenceNode:
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				p.errorf(e.Line, k.Value, "list items must be single values")
				return s, false
			}
			s.Values = append(s.Values, e.Value)
		}
	default:
		p.errorf(v.Line, k.Value, "must be a value or a list of values")
		return s, false
	}
	return s, true
}

var fileFields = []string{"path", "secret", "stage", "version_id", "key", "format", "template", "template_file", "mode", "uid", "gid", "on_change"}

// file reads one files: entry.
func (p *parser) file(n *yaml.Node, where string) (File, bool) {
	f := File{Where: where, Line: n.Line, Source: p.source}
	fs, ok := p.fields(n, where, fileFields...)
	if !ok {
		return f, false
	}
	before := len(p.errs)
	get := func(name string) (string, *yaml.Node) { return p.field(fs, where, name) }
	path, pn := get("path")
	if pn == nil {
		p.errorf(n.Line, where, "path is missing; give the file's path inside the mount, e.g. path: app/db.conf")
	} else {
		f.Path = p.path(path, pn.Line, where+".path")
	}
	secret, sn := get("secret")
	tmpl, tn := get("template")
	tfile, tfn := get("template_file")
	if tfn != nil && p.inline {
		p.errorf(tfn.Line, where+".template_file", "is not allowed here: it would read a file of the host; give the template's text with template:")
		return f, false
	}
	switch {
	case tn != nil && tfn != nil:
		p.errorf(tfn.Line, where, "template and template_file are both given; keep one")
	case (tn != nil || tfn != nil) && sn != nil:
		p.errorf(sn.Line, where, "secret is given with a template; a template names its secrets itself (secret \"ID\"), remove secret:")
	case tn != nil || tfn != nil:
		for _, x := range []string{"stage", "version_id", "key", "format"} {
			if v := fs[x]; v != nil {
				p.errorf(v.Line, where, "%s does not apply to a template; use the template's functions instead", x)
			}
		}
		if tn != nil {
			base := tn.Line - 1
			if tn.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				base = tn.Line
			}
			t, err := parseTemplate(where+".template", tmpl, p.source, base)
			if err != nil {
				p.errs = append(p.errs, err.Error())
			}
			f.Template = t
		} else {
			full := tfile
			if !filepath.IsAbs(full) {
				full = filepath.Join(p.dir, full)
			}
			text, err := readFile(full, p.euid)
			var r *refused
			switch {
			case errors.As(err, &r):
				p.errorf(tfn.Line, where+".template_file", "%s %v", full, err)
			case err != nil:
				p.errorf(tfn.Line, where+".template_file", "cannot read %s: %v", full, errors.Unwrap(err))
			}
			if err != nil {
				break
			}
			t, err := parseTemplate(full, string(text), full, 0)
			if err != nil {
				p.errorf(tfn.Line, where+".template_file", "%v", err)
			}
			f.Template = t
		}
	case sn == nil:
		p.errorf(n.Line, where, "secret is missing; give the secret's name or ARN (secret: prod/db), or a template:")
	default:
		f.Ref.SecretID = p.secretID(secret, sn.Line, where+".secret")
		stage, stn := get("stage")
		vid, vn := get("version_id")
		if stn != nil && vn != nil {
			p.errorf(vn.Line, where, "stage and version_id are both given; a file reads one or the other")
		}
		if stn != nil {
			if stage == "" || len(stage) > 256 {
				p.errorf(stn.Line, where+".stage", "%q is not a staging label; give 1 to 256 characters, e.g. AWSPREVIOUS", stage)
			}
			f.Ref.Stage = stage
		}
		if vn != nil {
			if len(vid) < 32 || len(vid) > 64 {
				p.errorf(vn.Line, where+".version_id", "%q is not a version id; give the 32 to 64 character VersionId that ListSecretVersionIds shows", vid)
			}
			f.Ref.VersionID = vid
		}
		if key, kn := get("key"); kn != nil {
			kp, err := ParseKeyPath(key)
			if err != nil {
				p.errorf(kn.Line, where+".key", "%v", err)
			}
			f.Key = kp
		}
		f.Format = FormatRaw
		if format, fn := get("format"); fn != nil {
			f.Format = Format(format)
			if !validFormat(f.Format) {
				p.errorf(fn.Line, where+".format", "%q is not a format; give one of %s", format, formatList())
			}
		}
	}
	if v, mn := get("mode"); mn != nil {
		f.Mode = p.mode(v, mn.Line, where+".mode")
	}
	if v, un := get("uid"); un != nil {
		f.UID = p.id(v, un.Line, where+".uid")
	}
	if v, gn := get("gid"); gn != nil {
		f.GID = p.id(v, gn.Line, where+".gid")
	}
	if v := fs["on_change"]; v != nil {
		if p.inline {
			p.errorf(v.Line, where+".on_change", "is not allowed here: it would run on the host; remove it")
		} else {
			f.OnChange = p.onChange(v, where+".on_change")
		}
	}
	return f, len(p.errs) == before
}

func formatList() string {
	s := make([]string, len(formats))
	for i, f := range formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// path checks a file's path: relative, inside the mount, each segment a
// valid file name.
func (p *parser) path(s string, line int, where string) string {
	switch {
	case s == "":
		p.errorf(line, where, "is empty; give the file's path inside the mount, e.g. app/db.conf")
		return ""
	case strings.HasPrefix(s, "/"):
		p.errorf(line, where, "%q is absolute; give a path relative to the mount point, e.g. %s", s, strings.TrimLeft(s, "/"))
		return ""
	}
	segs := strings.Split(s, "/")
	for _, seg := range segs {
		switch {
		case seg == "..":
			p.errorf(line, where, "%q leaves the mount; give a path inside it, without ..", s)
			return ""
		case seg == "" || seg == ".":
			p.errorf(line, where, "%q has an empty or . segment; write it as %s", s, cleanRel(s))
			return ""
		case len(seg) > 255 || strings.ContainsRune(seg, 0):
			p.errorf(line, where, "%q: a path segment is longer than 255 bytes or holds NUL", s)
			return ""
		}
	}
	return s
}

func cleanRel(s string) string {
	c := filepath.ToSlash(filepath.Clean("/" + s))
	return strings.TrimPrefix(c, "/")
}

// checkPaths refuses two files at one path, and a file where another file
// needs a directory.
func (p *parser) checkPaths(files []File) {
	byPath := map[string]File{}
	for _, f := range files {
		if f.Path == "" {
			continue
		}
		if g, ok := byPath[f.Path]; ok {
			p.errorf(f.Line, f.Where, "path %q is already used by %s at line %d; give each file its own path", f.Path, g.Where, g.Line)
			continue
		}
		byPath[f.Path] = f
	}
	for _, f := range files {
		for dir := filepath.Dir(f.Path); dir != "." && dir != "/" && f.Path != ""; dir = filepath.Dir(dir) {
			if g, ok := byPath[dir]; ok {
				p.errorf(f.Line, f.Where, "path %q needs %q to be a directory, but %s at line %d is a file there", f.Path, dir, g.Where, g.Line)
				break
			}
		}
	}
}

// secretID checks a secret's name or ARN.
func (p *parser) secretID(s string, line int, where string) string {
	if problem := secretIDProblem(s); problem != "" {
		p.errorf(line, where, "%s", problem)
	}
	return s
}

// secretIDProblem says what is wrong with a secret id, or "" when it is a
// secret's name or a Secrets Manager secret ARN.
func secretIDProblem(s string) string {
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 7)
		if len(s) > 2048 || len(parts) < 7 || parts[2] != "secretsmanager" || parts[5] != "secret" || !ValidSecretName(parts[6]) {
			return fmt.Sprintf("%q is not a Secrets Manager secret ARN; give arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME", s)
		}
		return ""
	}
	if !ValidSecretName(s) {
		return fmt.Sprintf("%q is not a secret id; give a secret's name (1 to 512 of the characters A-Z a-z 0-9 /_+=.@-) or its ARN", s)
	}
	return ""
}

// ValidSecretName reports whether a secret can have this name, as Secrets
// Manager allows: 1 to 512 of the characters A-Z a-z 0-9 and /_+=.@-.
func ValidSecretName(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("/_+=.@-", r):
		default:
			return false
		}
	}
	return true
}

var modeRE = regexp.MustCompile(`^0?[oO]?([0-7]{1,4})$`)

// mode reads octal permission bits.
func (p *parser) mode(s string, line int, where string) os.FileMode {
	m := modeRE.FindStringSubmatch(s)
	if m == nil {
		p.errorf(line, where, "%q is not an octal mode; use e.g. 0400", s)
		return 0
	}
	n, _ := strconv.ParseUint(m[1], 8, 32)
	if n&^0o777 != 0 {
		p.errorf(line, where, "%q has bits beyond the permissions; use e.g. 0400", s)
		return 0
	}
	if n == 0 {
		p.errorf(line, where, "%q lets nobody read the file; use e.g. 0400", s)
	}
	return os.FileMode(n)
}

// id reads a numeric uid or gid.
func (p *parser) id(s string, line int, where string) *uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		p.errorf(line, where, "%q is not a numeric id; give a number such as 1000", s)
		return nil
	}
	v := uint32(n)
	return &v
}

// onChange reads an on_change mapping; OnChange.Problems checks its fields.
func (p *parser) onChange(n *yaml.Node, where string) *OnChange {
	fs, ok := p.fields(n, where, "command", "signal", "pidfile", "debounce")
	if !ok {
		return nil
	}
	oc := &OnChange{Line: n.Line}
	if c := fs["command"]; c != nil {
		oc.Command = []string{}
		switch c.Kind {
		case yaml.ScalarNode:
			oc.Command, oc.Shell = []string{c.Value}, true
		case yaml.SequenceNode:
			for _, e := range c.Content {
				if e.Kind != yaml.ScalarNode {
					p.errorf(e.Line, where+".command", "list items must be strings")
					continue
				}
				oc.Command = append(oc.Command, e.Value)
			}
		}
	}
	if s := fs["signal"]; s != nil {
		oc.Signal, _ = p.scalar(s, where+".signal")
	}
	if s := fs["pidfile"]; s != nil {
		oc.PIDFile, _ = p.scalar(s, where+".pidfile")
	}
	if s := fs["debounce"]; s != nil {
		v, _ := p.scalar(s, where+".debounce")
		d, err := time.ParseDuration(v)
		if err != nil {
			p.errorf(s.Line, where+".debounce", "%q is not a duration; give e.g. 2s", v)
		}
		oc.Debounce = d
	}
	for _, pr := range oc.Problems(func(field string) string { return field + ":" }) {
		line, at := n.Line, where
		if f := fs[pr.Field]; f != nil {
			line, at = f.Line, where+"."+pr.Field
		}
		p.errorf(line, at, "%s", pr.Message)
	}
	return oc
}

// Paths returns the mapped paths, sorted.
func (c *Config) Paths() []string {
	out := make([]string, 0, len(c.Files))
	for _, f := range c.Files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

// SettingError words a problem with a top-level setting: where it is and
// what is wrong.
func (c *Config) SettingError(s Setting, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", c.Source, s.Line, s.Name, fmt.Sprintf(format, args...))
}
