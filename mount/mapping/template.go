package mapping

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// Template is a file rendered with Go's text/template. Its functions read
// secrets through the Fetch given to Render; the functions are listed
// above readsSecret.
type Template struct {
	name   string // the text/template name
	source string // where the text is: the mapping file or the template file
	base   int    // added to a template line to get a line of source
	t      *template.Template
	ids    []string // secret ids the text names, in order of first use
	text   string   // the template's text, to find a failed action by its position
}

// The functions a template can call. The first argument of each
// secret-reading one must be the secret id as a quoted string, so that the
// file's dependencies are known before it runs.
//
//	secret "ID"                      the value of the default stage, as a string
//	secretStage "ID" "STAGE"         the value of a stage
//	secretVersion "ID" "VERSION-ID"  the value of a version
//	key "ID" "PATH"                  a key of the default stage's JSON (dotted path, as key:)
//	keyStage "ID" "STAGE" "PATH"     a key of a stage's JSON
//	secretJSON "ID"                  the default stage's JSON, decoded, for range and with
//	secretJSONStage "ID" "STAGE"     a stage's JSON, decoded
//	shellquote S                     S as one POSIX shell word
//	pgpass S                         S with \ and : escaped for a .pgpass field
//	toJSON V                         V as compact JSON (a JSON string for a string)
//	b64enc S, b64dec S               standard base64 of S, and S decoded from it
//	trim S, lower S, upper S         S without surrounding white space, in lower or upper case
//	replace OLD NEW S                S with every OLD replaced by NEW

// readsSecret reports whether a template function's first argument is a
// secret id.
func readsSecret(name string) bool {
	switch name {
	case "secret", "secretStage", "secretVersion", "key", "keyStage", "secretJSON", "secretJSONStage":
		return true
	}
	return false
}

// funcs returns the template functions, reading secrets with get. With a
// nil get they are the placeholders used to parse. Their errors are
// *callError: they name an argument only where the call wrote it in the
// template's text (see callError).
func funcs(get func(Ref) ([]byte, error)) template.FuncMap {
	read := func(ref Ref) ([]byte, error) {
		b, err := get(ref)
		if err != nil {
			return nil, fetchError(ref, err)
		}
		return b, nil
	}
	str := func(ref Ref) (string, error) {
		if get == nil {
			return "", nil
		}
		b, err := read(ref)
		return string(b), err
	}
	// keyOf reads a key; pathArg is the path's position among the
	// function's arguments.
	keyOf := func(ref Ref, path string, pathArg int) (string, error) {
		p, err := ParseKeyPath(path)
		if err != nil {
			return "", &callError{words: func(shown argShown) string {
				if shown(pathArg) {
					return "key path " + err.Error()
				}
				return "key path " + hidden + " is not a valid key path"
			}}
		}
		if get == nil {
			return "", nil
		}
		b, err := read(ref)
		if err != nil {
			return "", err
		}
		raw, err := lookupKey(b, p)
		if err != nil {
			return "", &callError{words: func(shown argShown) string {
				var nk errNoKey
				if errors.As(err, &nk) && !shown(pathArg) {
					return refText(ref, shown) + " has no key " + hidden
				}
				return refText(ref, shown) + " " + err.Error()
			}}
		}
		return string(keyText(raw)), nil
	}
	jsonOf := func(ref Ref) (any, error) {
		if get == nil {
			return map[string]any{}, nil
		}
		b, err := read(ref)
		if err != nil {
			return nil, err
		}
		v, err := decodeJSON(b)
		if err != nil {
			return nil, &callError{words: func(shown argShown) string { return refText(ref, shown) + " " + err.Error() }}
		}
		return v, nil
	}
	return template.FuncMap{
		"secret":          func(id string) (string, error) { return str(Ref{SecretID: id}) },
		"secretStage":     func(id, stage string) (string, error) { return str(Ref{SecretID: id, Stage: stage}) },
		"secretVersion":   func(id, vid string) (string, error) { return str(Ref{SecretID: id, VersionID: vid}) },
		"key":             func(id, path string) (string, error) { return keyOf(Ref{SecretID: id}, path, 1) },
		"keyStage":        func(id, stage, path string) (string, error) { return keyOf(Ref{SecretID: id, Stage: stage}, path, 2) },
		"secretJSON":      func(id string) (any, error) { return jsonOf(Ref{SecretID: id}) },
		"secretJSONStage": func(id, stage string) (any, error) { return jsonOf(Ref{SecretID: id, Stage: stage}) },
		"shellquote":      func(s string) string { return ShellQuote(s) },
		"pgpass": func(s string) string {
			return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
		},
		"toJSON": func(v any) (string, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return "", fixedError("the value cannot be written as JSON")
			}
			return string(b), nil
		},
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"b64dec": func(s string) (string, error) {
			b, err := decodeBase64([]byte(s))
			if err != nil {
				return "", fixedError("the value is not base64")
			}
			return string(b), nil
		},
		"trim":    strings.TrimSpace,
		"lower":   strings.ToLower,
		"upper":   strings.ToUpper,
		"replace": func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	}
}

// refErr words a lookup error with the stage or version it concerns.
func refErr(ref Ref, err error) string {
	switch {
	case ref.VersionID != "":
		return fmt.Sprintf("version %q %v", ref.VersionID, err)
	case ref.Stage != "":
		return fmt.Sprintf("stage %q %v", ref.Stage, err)
	}
	return err.Error()
}

// parseTemplate parses a template's text. source and base say where the text
// is, so that errors name lines of the mapping file (inline) or of the
// template file.
func parseTemplate(name, text, source string, base int) (*Template, error) {
	t := &Template{name: name, source: source, base: base, text: text}
	tt, err := template.New(name).Option("missingkey=error").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return nil, t.rewrite(err)
	}
	t.t = tt
	var errs []string
	t.eachNode(func(sub *template.Template, n parse.Node) {
		cmd, ok := n.(*parse.CommandNode)
		if !ok {
			return
		}
		id, ok := cmd.Args[0].(*parse.IdentifierNode)
		if !ok || !readsSecret(id.Ident) {
			return
		}
		if len(cmd.Args) < 2 {
			return // text/template reports the missing argument when run
		}
		s, ok := cmd.Args[1].(*parse.StringNode)
		if !ok {
			loc, _ := sub.ErrorContext(cmd)
			errs = append(errs, fmt.Sprintf("template: %s: the secret id given to %s must be a quoted string, e.g. %s \"prod/db\"", loc, id.Ident, id.Ident))
			return
		}
		if problem := secretIDProblem(s.Text); problem != "" {
			loc, _ := sub.ErrorContext(s)
			errs = append(errs, fmt.Sprintf("template: %s: %s", loc, problem))
			return
		}
		if !slices.Contains(t.ids, s.Text) {
			t.ids = append(t.ids, s.Text)
		}
	})
	if len(errs) > 0 {
		return nil, t.rewrite(fmt.Errorf("%s", strings.Join(errs, "\n")))
	}
	return t, nil
}

// eachNode calls fn for every node of every template the text defines.
func (t *Template) eachNode(fn func(*template.Template, parse.Node)) {
	for _, sub := range t.t.Templates() {
		if sub.Tree != nil && sub.Root != nil {
			walk(sub.Root, func(n parse.Node) { fn(sub, n) })
		}
	}
}

// walk calls fn for n and every node below it.
func walk(n parse.Node, fn func(parse.Node)) {
	fn(n)
	switch x := n.(type) {
	case *parse.ListNode:
		for _, c := range x.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		walk(x.Pipe, fn)
	case *parse.IfNode:
		walkBranch(&x.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&x.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&x.BranchNode, fn)
	case *parse.TemplateNode:
		if x.Pipe != nil {
			walk(x.Pipe, fn)
		}
	case *parse.PipeNode:
		for _, v := range x.Decl {
			walk(v, fn)
		}
		for _, c := range x.Cmds {
			walk(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			walk(a, fn)
		}
	case *parse.ChainNode:
		walk(x.Node, fn)
	}
}

func walkBranch(b *parse.BranchNode, fn func(parse.Node)) {
	walk(b.Pipe, fn)
	walk(b.List, fn)
	if b.ElseList != nil {
		walk(b.ElseList, fn)
	}
}

// SecretIDs are the secrets the template reads.
func (t *Template) SecretIDs() []string { return slices.Clone(t.ids) }

// render runs the template. An error names the template line and never a
// value the template read (see execError).
func (t *Template) render(ctx context.Context, fetch Fetch) ([]byte, error) {
	get := func(ref Ref) ([]byte, error) { return fetch(ctx, ref) }
	tt, err := t.t.Clone()
	if err != nil {
		return nil, &TemplateError{msg: "cannot clone the template"}
	}
	tt.Funcs(funcs(get))
	var b bytes.Buffer
	if err := tt.Execute(&b, nil); err != nil {
		clear(b.Bytes())
		return nil, &TemplateError{msg: t.execError(err)}
	}
	return b.Bytes(), nil
}

// TemplateError is a template that failed to render; its message names the
// template's line, the action that failed and the reason, never a value.
type TemplateError struct{ msg string }

func (e *TemplateError) Error() string { return e.msg }

// rewrite turns text/template's "template: NAME:LINE:COL: ..." into
// "SOURCE:LINE:COL: ..." with LINE counted in the source file. It is for
// parse errors, which quote only the template's text.
func (t *Template) rewrite(err error) error {
	re := regexp.MustCompile(`template: ` + regexp.QuoteMeta(t.name) + `:(\d+)`)
	msg := re.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(re.FindStringSubmatch(m)[1])
		return fmt.Sprintf("%s:%d", t.source, n+t.base)
	})
	return fmt.Errorf("%s", msg)
}
