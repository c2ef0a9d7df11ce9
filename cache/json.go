package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotJSONObject is returned by GetSecretJSON when the secret's string is
// not a JSON object.
var ErrNotJSONObject = errors.New("secret value is not a JSON object")

// GetSecretJSON unmarshals the JSON object held by the default stage of a
// string secret into a T, the way the reference's InjectKeywordedSecretString
// decorator hands a secret's keys to a function. T is usually a struct with
// json tags, or a map.
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
	trimmed := bytes.TrimLeft([]byte(s), " \t\r\n")
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
	return out, nil
}
