package mapping

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDefect9_10_TemplateErrorsNeverQuoteASecret runs templates that fail
// in every function and in text/template's own checks with arguments taken
// from a secret, and checks that no error holds the secret, any part of it,
// or its length.
func TestDefect9_10_TemplateErrorsNeverQuoteASecret(t *testing.T) {
	// The hostile value: long enough that its length (97) is no line or
	// column of these one-line templates; not base64. With two dots more
	// it is not a key path either.
	hostile := "hunter2-SECRET-" + strings.Repeat("x", 97-len("hunter2-SECRET-"))
	if len(hostile) != 97 {
		t.Fatalf("len %d", len(hostile))
	}
	const bigNumber = "98765432109876543210" // overflows int64
	db := `{"password":"` + hostile + `","badpath":"` + hostile + `..","list":["` + hostile + `"],"obj":{"` + hostile + `":1},"port":` + bigNumber + `}`
	secrets := fakeSecrets{
		"prod/db": {"AWSCURRENT": db},
		"raw":     {"AWSCURRENT": hostile},
	}
	const p = `{{ $p := (secretJSON "prod/db").password }}`
	cases := []struct {
		name, text string
		want       []string // besides the location
	}{
		{"key with a key from the value", `{{ with secretJSON "prod/db" }}{{ key "prod/db" .password }}{{ end }}`, []string{`error calling key: secret "prod/db" has no key [computed, not shown]`}},
		{"key with a piped key", `{{ index (secretJSON "prod/db").list 0 | key "prod/db" }}`, []string{"error calling key"}},
		{"key with a key of the value's object", `{{ range $k, $v := (secretJSON "prod/db").obj }}{{ key "prod/db" $k }}{{ end }}`, []string{"error calling key"}},
		{"key with a bad key path", `{{ key "prod/db" (secretJSON "prod/db").badpath }}`, []string{"error calling key: key path [computed, not shown] is not a valid key path"}},
		{"secretStage", p + `{{ secretStage "prod/db" $p }}`, []string{`error calling secretStage: secret "prod/db" stage [computed, not shown]: not found`}},
		{"secretVersion", p + `{{ secretVersion "prod/db" $p }}`, []string{"error calling secretVersion", "not found"}},
		{"keyStage with the stage from the value", p + `{{ keyStage "prod/db" $p "x" }}`, []string{"error calling keyStage", "not found"}},
		{"keyStage with the key from the value", `{{ with secretJSON "prod/db" }}{{ keyStage "prod/db" "AWSCURRENT" .password }}{{ end }}`, []string{"error calling keyStage"}},
		{"secretJSONStage", p + `{{ secretJSONStage "prod/db" $p }}`, []string{"error calling secretJSONStage"}},
		{"secretJSON of a value that is not JSON", `{{ secretJSON "raw" }}`, []string{`error calling secretJSON: secret "raw" is not valid JSON`}},
		{"b64dec", p + `{{ b64dec $p }}`, []string{"error calling b64dec: the value is not base64"}},
		{"index out of range by the value's length", p + `{{ index (secretJSON "prod/db").list (len $p) }}`, []string{"error calling index: index out of range"}},
		{"slice out of range by the value's length", p + `{{ slice "ab" 1 (len $p) }}`, []string{"error calling slice: index out of range"}},
		{"range over a string", p + `{{ range $p }}{{ end }}`, []string{"range can't iterate over"}},
		{"range with two variables over the value's length", p + `{{ range $a, $b := len $p }}{{ end }}`, []string{"iterate over more than one variable"}},
		{"eq of a list", `{{ eq (secretJSON "prod/db").list "x" }}`, []string{"error calling eq"}},
		{"eq of two lists", `{{ eq (secretJSON "prod/db").list (secretJSON "prod/db").list }}`, []string{"error calling eq"}},
		{"a method of a number", `{{ (secretJSON "prod/db").port.Int64 }}`, []string{"error calling Int64"}},
	}
	lengthRE := regexp.MustCompile(`\b` + strconv.Itoa(len(hostile)) + `\b`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp, err := parseTemplate("t", c.text, "t.tmpl", 0)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			out, err := tp.render(context.Background(), secrets.fetch)
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("rendered %q, err %v; want a template error", out, err)
			}
			msg := err.Error()
			for _, leak := range []string{"hunter2", "SECRET", "xxxx", bigNumber[:6]} {
				if strings.Contains(msg, leak) {
					t.Errorf("the error holds %q: %s", leak, msg)
				}
			}
			if lengthRE.MatchString(msg) {
				t.Errorf("the error holds the value's length %d: %s", len(hostile), msg)
			}
			for _, w := range append([]string{"t.tmpl:1:"}, c.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("the error lacks %q: %s", w, msg)
				}
			}
		})
	}
}

// TestTemplateErrorsQuoteWhatTheTemplateWrote: an argument written as a
// literal in the template is part of the mapping file, not of a secret, and
// is named in the error.
func TestTemplateErrorsQuoteWhatTheTemplateWrote(t *testing.T) {
	secrets := fakeSecrets{"prod/db": {"AWSCURRENT": `{"password":"hunter2"}`}}
	for text, want := range map[string]string{
		`{{ key "prod/db" "db.nope" }}`:                                               `t.tmpl:1:3: executing "t" at <key "prod/db" "db.nope">: error calling key: secret "prod/db" has no key db`,
		`{{ keyStage "prod/db" "AWSCURRENT" "nope" }}`:                                `error calling keyStage: secret "prod/db" stage "AWSCURRENT" has no key nope`,
		`{{ secretStage "prod/db" "AWSPENDING" }}`:                                    `error calling secretStage: secret "prod/db" "AWSPENDING": file does not exist`,
		`{{ key "prod/db" "a..b" }}`:                                                  `error calling key: key path "a..b" has an empty key`,
		`{{ (secretJSON "prod/db").nope }}`:                                           `map has no entry for key "nope"`,
		"\n{{ with secretJSON \"prod/db\" }}{{ key \"prod/db\" .password }}{{ end }}": `t.tmpl:2:34: executing "t" at <key "prod/db" .password>: error calling key: secret "prod/db" has no key [computed, not shown]`,
		`{{ key "prod/db" "password" | key "prod/db" }}`:                              `has no key [computed, not shown]`,
		`{{ define "x" }}{{ key "prod/db" "y" }}{{ end }}{{ template "x" }}`:          `executing "x" at <key "prod/db" "y">: error calling key: secret "prod/db" has no key y`,
	} {
		tp, err := parseTemplate("t", text, "t.tmpl", 0)
		if err != nil {
			t.Fatalf("%s: parse: %v", text, err)
		}
		_, err = tp.render(context.Background(), secrets.fetch)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s:\n got %v\nwant %s", text, err, want)
		}
	}
}
