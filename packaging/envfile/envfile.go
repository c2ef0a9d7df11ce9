// Package envfile reads environment files with the rules systemd applies to
// EnvironmentFile= (systemd.exec(5)), so that one file of KEY=VALUE lines
// means the same to the secretsfs units, where systemd reads it, and to the
// fstab mount helper, which reads it with this package. The file is data:
// nothing in it is executed or expanded.
//
// The rules, as systemd's own parser (src/basic/env-file.c) applies them:
//
//   - Lines starting with "#" or ";" (after leading whitespace) are comments;
//     empty lines and lines without "=" are ignored.
//   - Whitespace around the name and around an unquoted value is dropped;
//     whitespace inside the value is kept. There are no trailing comments:
//     "A=1 # one" sets A to "1 # one".
//   - Unquoted, a backslash keeps the next character ("\\" is "\", "\ "
//     keeps a space) and a backslash at the end of a line joins the next
//     line; quotes after the first character of the value are kept.
//   - '...' keeps everything up to the next single quote verbatim, newlines
//     included; no escapes.
//   - "..." may span lines; a backslash keeps one of " \ ` $ and drops a
//     newline; before any other character both are kept.
//   - Quoted and unquoted parts that follow each other are joined: A="x"y
//     is "xy".
//   - Nothing is expanded: "$HOME" stays as written.
//   - A later assignment of a name replaces an earlier one.
//
// Where systemd ignores an assignment with a warning (a name that is not
// letters, digits and "_" or starts with a digit, such as "export A"), or
// refuses the whole file (text that is not UTF-8, a NUL byte), Parse
// returns an error naming each line, together with the assignments it read:
// its callers refuse the file, so that a line that would silently do nothing
// under systemd is seen.
//
// One difference between systemd versions: since systemd 254 a comment
// ending in a backslash no longer continues onto the next line; this
// package follows the current rule.
package envfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// Var is one assignment of the file.
type Var struct {
	Name  string
	Value string
	// Line is the line of the file where the assignment starts (from 1).
	Line int
}

// Read reads and parses the file at path; errors name the file.
func Read(path string) ([]Var, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars, err := Parse(data)
	if err != nil {
		return vars, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

// Apply returns environ (NAME=VALUE strings) with vars set, each replacing
// any earlier value of its name, as EnvironmentFile= overrides
// Environment=.
func Apply(environ []string, vars []Var) []string {
	set := make(map[string]string, len(vars))
	var order []string
	for _, v := range vars {
		if _, ok := set[v.Name]; !ok {
			order = append(order, v.Name)
		}
		set[v.Name] = v.Value
	}
	out := make([]string, 0, len(environ)+len(order))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; !ok {
			out = append(out, kv)
		}
	}
	for _, name := range order {
		out = append(out, name+"="+set[name])
	}
	return out
}

// The states of the parser, those of systemd's.
const (
	preKey = iota
	inKey
	preValue
	inValue
	valueEscape
	singleQuoted
	doubleQuoted
	doubleQuotedEscape
	inComment
	commentEscape
)

func isSpace(c byte) bool   { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isNewline(c byte) bool { return c == '\n' || c == '\r' }

// Parse reads the assignments of an environment file. Where the file has
// lines systemd would ignore or refuse, it returns the assignments it could
// read and an error naming every such line.
func Parse(data []byte) ([]Var, error) {
	var (
		vars  []Var
		errs  []error
		key   []byte
		value []byte
		state = preKey
		line  = 1 // the line being read
		start = 1 // the line where the current key started
		// Where trailing whitespace of the key or of an unquoted value
		// starts, or -1.
		keyTrail, valueTrail = -1, -1
	)
	push := func(trimValue bool) {
		if keyTrail >= 0 {
			key = key[:keyTrail]
		}
		if trimValue && valueTrail >= 0 {
			value = value[:valueTrail]
		}
		name, val := string(key), string(value)
		switch {
		case !utf8.ValidString(name) || !utf8.ValidString(val):
			errs = append(errs, fmt.Errorf("line %d: not UTF-8 text; systemd refuses the whole file", start))
		case !validName(name):
			errs = append(errs, fmt.Errorf("line %d: %q is not a variable name (letters, digits and _, not starting with a digit; no \"export\"); systemd ignores this line", start, name))
		default:
			vars = append(vars, Var{Name: name, Value: val, Line: start})
		}
		key, value = key[:0:0], value[:0:0]
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("line %d: a NUL byte; systemd refuses the whole file", 1+bytes.Count(data[:i], []byte("\n")))
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = inComment
			case !isSpace(c):
				state, keyTrail, start = inKey, -1, line
				key = append(key, c)
			}
		case inKey:
			switch {
			case isNewline(c):
				state, key = preKey, key[:0] // no "=": ignored
			case c == '=':
				state, valueTrail = preValue, -1
			default:
				if !isSpace(c) {
					keyTrail = -1
				} else if keyTrail < 0 {
					keyTrail = len(key)
				}
				key = append(key, c)
			}
		case preValue:
			switch {
			case isNewline(c):
				push(false)
				state = preKey
			case c == '\'':
				state = singleQuoted
			case c == '"':
				state = doubleQuoted
			case c == '\\':
				state = valueEscape
			case !isSpace(c):
				state = inValue
				value = append(value, c)
			}
		case inValue:
			switch {
			case isNewline(c):
				push(true)
				state = preKey
			case c == '\\':
				state, valueTrail = valueEscape, -1
			default:
				if !isSpace(c) {
					valueTrail = -1
				} else if valueTrail < 0 {
					valueTrail = len(value)
				}
				value = append(value, c)
			}
		case valueEscape:
			state = inValue
			if !isNewline(c) { // an escaped newline is dropped
				value = append(value, c)
			}
		case singleQuoted:
			if c == '\'' {
				state = preValue
			} else {
				value = append(value, c)
			}
		case doubleQuoted:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuotedEscape
			default:
				value = append(value, c)
			}
		case doubleQuotedEscape:
			state = doubleQuoted
			switch {
			case strings.IndexByte("\"\\`$", c) >= 0:
				value = append(value, c)
			case c != '\n':
				value = append(value, '\\', c)
			}
		case inComment:
			switch {
			case c == '\\':
				state = commentEscape
			case isNewline(c):
				state = preKey
			}
		case commentEscape:
			if isNewline(c) {
				state = preKey
			} else {
				state = inComment
			}
		}
		if c == '\n' {
			line++
		}
	}
	switch state {
	case preValue, valueEscape, singleQuoted, doubleQuoted, doubleQuotedEscape:
		push(false)
	case inValue:
		push(true)
	}
	return vars, errors.Join(errs...)
}

// validName is systemd's env_name_is_valid: letters, digits and "_", not
// starting with a digit.
func validName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
