package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KeyPath is the path of a value inside a JSON secret: object keys, or
// array indexes for segments that are numbers.
type KeyPath []string

// String writes the path back in the dotted syntax ParseKeyPath reads.
func (p KeyPath) String() string {
	var b strings.Builder
	for i, s := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		if s == "" || strings.ContainsAny(s, `."`) || s != strings.TrimSpace(s) {
			q, _ := json.Marshal(s)
			b.Write(q)
		} else {
			b.WriteString(s)
		}
	}
	return b.String()
}

// ParseKeyPath reads a dotted key path: segments separated by ".", each
// either plain text (any characters but "." and `"`) or a double-quoted
// string with JSON escapes, for keys that contain a dot: db."primary.host".
func ParseKeyPath(s string) (KeyPath, error) {
	return parsePath(s, false)
}

// parseJMESPath reads the JMESPath subset that CSI provider definitions use:
// identifiers joined by dots, and quoted identifiers ("api-key").
func parseJMESPath(s string) (KeyPath, error) {
	p, err := parsePath(s, true)
	if err != nil {
		return nil, fmt.Errorf("%w; secretsfs reads the JMESPath subset of dotted fields and quoted keys, e.g. db.password or '\"api-key\"'", err)
	}
	return p, nil
}

func parsePath(s string, jmes bool) (KeyPath, error) {
	if s == "" {
		return nil, errors.New("is empty; give a key such as password or db.primary.password")
	}
	var out KeyPath
	for i := 0; ; {
		var seg string
		if i < len(s) && s[i] == '"' {
			end := closingQuote(s, i)
			if end < 0 {
				return nil, fmt.Errorf("%q has a quote that is not closed", s)
			}
			if err := json.Unmarshal([]byte(s[i:end+1]), &seg); err != nil {
				return nil, fmt.Errorf("%q: bad quoted key at offset %d", s, i)
			}
			i = end + 1
		} else {
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '"' {
				j++
			}
			seg = s[i:j]
			if seg == "" {
				return nil, fmt.Errorf("%q has an empty key at offset %d; quote a key that contains a dot: a.\"b.c\"", s, i)
			}
			if jmes && !identifier(seg) {
				return nil, fmt.Errorf("%q: %q is not a plain JMESPath field; quote it: \"%s\"", s, seg, seg)
			}
			i = j
		}
		out = append(out, seg)
		if i == len(s) {
			return out, nil
		}
		if s[i] != '.' {
			return nil, fmt.Errorf("%q: expected \".\" at offset %d", s, i)
		}
		i++
		if i == len(s) {
			return nil, fmt.Errorf("%q ends with a dot", s)
		}
	}
}

// closingQuote returns the index of the quote closing the one at i, or -1.
func closingQuote(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// identifier reports whether s is a JMESPath unquoted identifier.
func identifier(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// errNoKey says a key path leads nowhere; it names the path, never a value.
type errNoKey struct{ path KeyPath }

func (e errNoKey) Error() string { return fmt.Sprintf("has no key %s", e.path) }

// lookupKey finds a key path in a JSON document and returns the raw JSON of
// the value there.
func lookupKey(data []byte, path KeyPath) (json.RawMessage, error) {
	cur := json.RawMessage(trimJSONSpace(data))
	if !json.Valid(cur) {
		return nil, errNotJSON
	}
	for i, seg := range path {
		switch {
		case len(cur) > 0 && cur[0] == '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(cur, &obj); err != nil {
				return nil, errNotJSON
			}
			next, ok := obj[seg]
			if !ok {
				return nil, errNoKey{path[:i+1]}
			}
			cur = next
		case len(cur) > 0 && cur[0] == '[':
			var arr []json.RawMessage
			n, err := strconv.Atoi(seg)
			if err != nil || json.Unmarshal(cur, &arr) != nil || n < 0 || n >= len(arr) {
				return nil, errNoKey{path[:i+1]}
			}
			cur = arr[n]
		default:
			return nil, errNoKey{path[:i+1]}
		}
	}
	return cur, nil
}

// trimJSONSpace drops the white space JSON allows around a value (space,
// tab, CR, LF) and nothing else: a value that starts with another space
// character (a form feed, U+00A0) is not JSON.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

// errNotJSON says a value is not JSON, without quoting it (the JSON
// decoder's errors quote characters of the input).
var errNotJSON = errors.New("is not valid JSON")

// keyText is what a key's file holds: a string without quotes, any other
// value as compact JSON (as in the default layout).
func keyText(raw json.RawMessage) []byte {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append([]byte(nil), raw...)
	}
	return b.Bytes()
}
