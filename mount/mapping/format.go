package mapping

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format is how a file shows the value it selects.
type Format string

// The formats of a files: entry.
const (
	// FormatRaw: the exact bytes; for a key, a string without quotes and any
	// other value as compact JSON.
	FormatRaw Format = "raw"
	// FormatEnv: a JSON object as KEY=value lines, sorted by key, values
	// shell-quoted when needed. A key that is not a shell variable name fails
	// the file rather than being renamed.
	FormatEnv Format = "env"
	// FormatProperties: a JSON object as Java properties (key=value lines,
	// sorted, with the escapes of java.util.Properties).
	FormatProperties Format = "properties"
	// FormatYAML: any JSON value as YAML, object keys sorted.
	FormatYAML Format = "yaml"
	// FormatJSON: any JSON value indented by two spaces, keys in their order.
	FormatJSON Format = "json"
	// FormatBase64: a string holding base64 (standard or URL alphabet,
	// padded or not), served decoded.
	FormatBase64 Format = "base64"
)

var formats = []Format{FormatRaw, FormatEnv, FormatProperties, FormatYAML, FormatJSON, FormatBase64}

func validFormat(f Format) bool {
	for _, g := range formats {
		if f == g {
			return true
		}
	}
	return false
}

// apply turns the selected value into the file's content. whole is the
// secret's value (nil when a key was selected); raw is the key's JSON.
// Errors never quote the value.
func (f Format) apply(whole []byte, raw json.RawMessage) ([]byte, error) {
	if f == FormatRaw || f == "" {
		if raw != nil {
			return keyText(raw), nil
		}
		return whole, nil
	}
	if f == FormatBase64 {
		text := whole
		if raw != nil {
			if len(raw) == 0 || raw[0] != '"' {
				return nil, fmt.Errorf("format base64 needs a string value")
			}
			text = keyText(raw)
		}
		return decodeBase64(text)
	}
	if raw == nil {
		raw = json.RawMessage(trimJSONSpace(whole))
		if !json.Valid(raw) {
			return nil, fmt.Errorf("format %s needs a JSON value: the secret %s", f, errNotJSON)
		}
	}
	switch f {
	case FormatJSON:
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return nil, errNotJSON
		}
		b.WriteByte('\n')
		return b.Bytes(), nil
	case FormatYAML:
		v, err := decodeJSON(raw)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(yamlNode(v)); err != nil {
			return nil, fmt.Errorf("format yaml: encoding failed")
		}
		enc.Close()
		return b.Bytes(), nil
	case FormatEnv, FormatProperties:
		var obj map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			return nil, fmt.Errorf("format %s needs a JSON object", f)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		for _, k := range keys {
			v := string(keyText(obj[k]))
			if f == FormatEnv {
				if !envName.MatchString(k) {
					return nil, fmt.Errorf("format env: the key %q is not a shell variable name (letters, digits and _, not starting with a digit); select another key or use a template", k)
				}
				b.WriteString(k + "=" + ShellQuote(v) + "\n")
			} else {
				b.WriteString(propertiesEscape(k, true) + "=" + propertiesEscape(v, false) + "\n")
			}
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// decodeBase64 accepts the standard and URL alphabets, padded or not, and
// ignores line breaks (PEM-style wrapping).
func decodeBase64(text []byte) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, string(text))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(s); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("format base64: the value is not base64")
}

// decodeJSON decodes keeping numbers exact.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errNotJSON
	}
	return v, nil
}

// yamlNode turns a decoded JSON value into a YAML node, numbers keeping
// their exact text, object keys sorted.
func yamlNode(v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content, yamlString(k), yamlNode(x[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			n.Content = append(n.Content, yamlNode(e))
		}
		return n
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(x), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(x)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(x)}
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	default:
		return yamlString(fmt.Sprint(x))
	}
}

// yamlString is a string scalar, double-quoted when a YAML 1.1 reader
// (PyYAML, SnakeYAML) would take it for something else: yes, no, on, off,
// y, n, null, ~, or anything starting like a number; a literal block when
// it spans lines.
func yamlString(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch {
	case strings.Contains(s, "\n"):
		n.Style = yaml.LiteralStyle
	case yaml11Special.MatchString(s):
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

var yaml11Special = regexp.MustCompile(`^(?i:y|n|yes|no|on|off|true|false|null|~|)$|^[-+.]?[0-9]`)

// ShellQuote returns s as one word for a POSIX shell: unchanged when it is
// made of safe characters only, otherwise in single quotes (a single quote
// inside written as '\”).
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// propertiesEscape escapes a key or a value the way java.util.Properties
// store() does: backslash escapes for \, control characters, and (in keys,
// or leading in values) spaces; = : # ! escaped; characters beyond ASCII as
// \uXXXX so the file is valid ISO-8859-1.
func propertiesEscape(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == ' ' && (key || i == 0):
			b.WriteString(`\ `)
		case strings.ContainsRune("=:#!", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				for _, u := range utf16Pair(r) {
					fmt.Fprintf(&b, `\u%04X`, u)
				}
			} else {
				fmt.Fprintf(&b, `\u%04X`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func utf16Pair(r rune) [2]rune {
	r -= 0x10000
	return [2]rune{0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff}
}
