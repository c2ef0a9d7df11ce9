package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type dbCreds struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Port     int    `json:"port"`
}

func TestGetSecretJSON(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.client.PutString("db", ` {"username":"app","password":"hunter2","port":5432}`)
	got, err := GetSecretJSON[dbCreds](ctx, e.c, "db")
	if err != nil || got != (dbCreds{"app", "hunter2", 5432}) {
		t.Fatalf("GetSecretJSON = %+v, %v", got, err)
	}

	e.client.PutString("plain", "hunter2-not-json")
	e.client.PutString("array", `["hunter2"]`)
	e.client.PutString("broken", `{"password": "hunter2`)
	e.client.PutString("wrongtype", `{"port": "hunter2"}`)
	e.client.PutBinary("bin", []byte(`{"password":"hunter2"}`))
	for _, tc := range []struct {
		id      string
		notJSON bool
		want    string
	}{
		{"plain", true, "not a JSON object"},
		{"array", true, "not a JSON object"},
		{"broken", true, "invalid JSON at byte"},
		{"wrongtype", false, `field "port"`},
		{"bin", true, "holds binary data"},
	} {
		_, err := GetSecretJSON[dbCreds](ctx, e.c, tc.id)
		if err == nil || errors.Is(err, ErrNotJSONObject) != tc.notJSON || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.id, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the secret: %v", tc.id, err)
		}
	}
	if _, err := GetSecretJSON[dbCreds](ctx, e.c, "missing"); !isNotFound(err) {
		t.Errorf("missing: %v", err)
	}
	m, err := GetSecretJSONWithStage[map[string]any](ctx, e.c, "db", "AWSCURRENT")
	if err != nil || m["port"] != float64(5432) {
		t.Errorf("map: %v, %v", m, err)
	}
}

// The reference's decorator fails with "Cached secret does not contain key
// password" where a struct field's key is absent; so does GetSecretJSON,
// naming the key and never a value. A field may opt out with omitempty.
func TestDefect9_17_GetSecretJSONMissingKeyIsAnError(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.client.PutString("db", `{"username":"hunter2-user","port":5432}`)
	_, err := GetSecretJSON[dbCreds](ctx, e.c, "db")
	if err == nil || !errors.Is(err, ErrMissingKey) || !strings.Contains(err.Error(), `"password"`) {
		t.Fatalf("GetSecretJSON with the key password absent = %v, want ErrMissingKey naming \"password\"", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "5432") {
		t.Fatalf("the error shows the secret: %v", err)
	}
	// A pointer to the struct is checked the same way.
	if _, err := GetSecretJSON[*dbCreds](ctx, e.c, "db"); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("GetSecretJSON[*dbCreds] = %v, want ErrMissingKey", err)
	}

	type optional struct {
		Username string `json:"username"`
		Password string `json:"password,omitempty"` // opts out
		Comment  string `json:"-"`
		Port     int    // no tag: the field name, matched as encoding/json does
		internal string
	}
	got, err := GetSecretJSON[optional](ctx, e.c, "db")
	if err != nil || got.Username != "hunter2-user" || got.Port != 5432 {
		t.Fatalf("GetSecretJSON with only optional keys absent = %+v, %v", got, err)
	}

	// Keys of an embedded struct are the object's own keys.
	type embedded struct {
		dbCreds
		Extra string `json:"extra,omitempty"`
	}
	if _, err := GetSecretJSON[embedded](ctx, e.c, "db"); !errors.Is(err, ErrMissingKey) || !strings.Contains(err.Error(), `"password"`) {
		t.Fatalf("embedded struct with password absent = %v, want ErrMissingKey naming \"password\"", err)
	}
	// A map asks for no key in particular.
	if _, err := GetSecretJSON[map[string]any](ctx, e.c, "db"); err != nil {
		t.Fatalf("map: %v", err)
	}
}
