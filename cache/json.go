package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ErrNotJSONObject is returned by GetSecretJSON when the secret's string is
// not a JSON object.
var ErrNotJSONObject = errors.New("secret value is not a JSON object")

// ErrMissingKey is returned by GetSecretJSON when the JSON object lacks the
// key of a field of T; the error names the key.
var ErrMissingKey = errors.New("cached secret does not contain key")

// GetSecretJSON unmarshals the JSON object held by the default stage of a
// string secret into a T, the way the reference's InjectKeywordedSecretString
// decorator hands a secret's keys to a function. T is usually a struct with
// json tags, or a map.
//
// As the reference fails when the secret lacks a key the function asks for,
// every top-level field of a struct T (or *T) must have its key in the
// object, matched as encoding/json matches it; otherwise the error matches
// ErrMissingKey and names the key, never a value. A field tagged omitempty
// or omitzero is optional, and one tagged "-" is ignored. Nested objects are
// not checked.
func GetSecretJSON[T any](ctx context.Context, c *Cache, secretID string) (T, error) {
	return GetSecretJSONWithStage[T](ctx, c, secretID, "")
}

// GetSecretJSONWithStage is GetSecretJSON for a given stage; an empty stage
// means Config.DefaultVersionStage.
func GetSecretJSONWithStage[T any](ctx context.Context, c *Cache, secretID, stage string) (T, error) {
	var out T
	s, err := c.GetSecretStringWithStage(ctx, secretID, stage)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// Say why when the secret exists but holds binary data.
			if _, berr := c.GetSecretBinaryWithStage(ctx, secretID, stage); berr == nil {
				return out, fmt.Errorf("secret %q holds binary data, not a JSON string: %w", secretID, ErrNotJSONObject)
			}
		}
		return out, err
	}
	buf := []byte(s)
	defer clear(buf)
	trimmed := bytes.TrimLeft(buf, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return out, fmt.Errorf("secret %q: %w", secretID, ErrNotJSONObject)
	}
	if err := json.Unmarshal(trimmed, &out); err != nil {
		// The decoder's message can quote the value; say only where it broke.
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return out, fmt.Errorf("secret %q: invalid JSON at byte %d: %w", secretID, syn.Offset, ErrNotJSONObject)
		case errors.As(err, &typ):
			return out, fmt.Errorf("secret %q: JSON field %q is a %s, which does not fit %s", secretID, typ.Field, typ.Value, typ.Type)
		default:
			return out, fmt.Errorf("secret %q: JSON does not fit %T", secretID, out)
		}
	}
	if key, ok := missingKey(reflect.TypeFor[T](), trimmed); ok {
		return out, fmt.Errorf("secret %q: %w %q", secretID, ErrMissingKey, key)
	}
	return out, nil
}

// missingKey returns the first key that a field of the struct t (or *t)
// requires and the JSON object doc does not have.
func missingKey(t reflect.Type, doc []byte) (string, bool) {
	want := requiredKeys(t)
	if len(want) == 0 {
		return "", false
	}
	var have map[string]json.RawMessage
	if err := json.Unmarshal(doc, &have); err != nil {
		return "", false // already decoded once: cannot happen
	}
	for _, v := range have {
		clear(v)
	}
	for _, k := range want {
		if !hasKey(have, k) {
			return k, true
		}
	}
	return "", false
}

// hasKey tells whether the object has the key a field named k decodes from:
// encoding/json prefers an exact match and accepts any case.
func hasKey(have map[string]json.RawMessage, k string) bool {
	if _, ok := have[k]; ok {
		return true
	}
	for h := range have {
		if strings.EqualFold(h, k) {
			return true
		}
	}
	return false
}

// requiredKeys lists the JSON keys of the fields of the struct t (or *t)
// that are not optional, in field order, fields of embedded structs
// included as encoding/json includes them.
func requiredKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				if !f.IsExported() {
					continue // encoding/json cannot fill it
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				keys = appendNew(keys, requiredKeys(ft)...)
				continue
			}
		}
		if !f.IsExported() || optionalField(opts) {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys = appendNew(keys, name)
	}
	return keys
}

// optionalField tells whether a json tag's options make a field optional.
func optionalField(opts string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == "omitempty" || o == "omitzero" {
			return true
		}
	}
	return false
}

// appendNew appends the keys not in keys yet.
func appendNew(keys []string, more ...string) []string {
	for _, k := range more {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}
