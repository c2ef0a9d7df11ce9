package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve sends one raw protocol request to e and returns the status, the
// error type (empty on success) and the body.
func serve(t testing.TB, e *Emulator, req *http.Request) (int, string, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("response is not a JSON object (status %d): %q", rec.Code, body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Fatalf("Content-Type %q", ct)
	}
	code, _ := resp["__type"].(string)
	if rec.Code != http.StatusOK {
		if code == "" || rec.Header().Get("X-Amzn-Errortype") != code {
			t.Fatalf("error response without a consistent type: status %d, __type %q, header %q", rec.Code, code, rec.Header().Get("X-Amzn-Errortype"))
		}
		if msg, _ := resp["message"].(string); msg == "" && code != ErrUnknownOperation {
			t.Fatalf("%s without a message", code)
		}
	}
	return rec.Code, code, body
}

func TestBadRequests(t *testing.T) {
	e := New()
	mustCreate(t, e, Secret{Name: "exists", SecretString: str("v")})
	big := strings.Repeat("x", maxValueBytes+1)
	const secretValue = "TOP-SECRET-VALUE"
	cases := []struct {
		name   string
		op     string
		body   string
		status int
		code   string
	}{
		{"malformed JSON", OpGetSecretValue, `{"SecretId":`, 400, ErrSerialization},
		{"not an object", OpGetSecretValue, `[1,2]`, 400, ErrSerialization},
		{"wrong member type", OpGetSecretValue, `{"SecretId": 5}`, 400, ErrSerialization},
		{"bad base64", OpCreateSecret, `{"Name":"b64","SecretBinary":"***"}`, 400, ErrSerialization},
		{"unknown operation", "GetRandomPassword", `{}`, 400, ErrUnknownOperation},
		{"no target", "", `{}`, 400, ErrUnknownOperation},
		{"missing required member", OpGetSecretValue, ``, 400, ErrValidation},
		{"oversized string value", OpCreateSecret, `{"Name":"big","SecretString":"` + big + `"}`, 400, ErrValidation},
		{"oversized binary value", OpCreateSecret, `{"Name":"big","SecretBinary":"` + base64.StdEncoding.EncodeToString([]byte(big)) + `"}`, 400, ErrValidation},
		{"largest value", OpCreateSecret, `{"Name":"max","SecretString":"` + big[1:] + `"}`, 200, ""},
		{"empty value", OpCreateSecret, `{"Name":"empty","SecretString":""}`, 400, ErrValidation},
		{"bad name charset", OpCreateSecret, `{"Name":"bad name!","SecretString":"` + secretValue + `"}`, 400, ErrValidation},
		{"name too long", OpCreateSecret, `{"Name":"` + strings.Repeat("n", 513) + `","SecretString":"x"}`, 400, ErrValidation},
		{"longest name", OpCreateSecret, `{"Name":"` + strings.Repeat("n", 512) + `","SecretString":"x"}`, 200, ""},
		{"token too short", OpPutSecretValue, `{"SecretId":"exists","ClientRequestToken":"short","SecretString":"` + secretValue + `"}`, 400, ErrValidation},
		{"token too long", OpPutSecretValue, `{"SecretId":"exists","ClientRequestToken":"` + strings.Repeat("t", 65) + `","SecretString":"x"}`, 400, ErrValidation},
		{"both values", OpPutSecretValue, `{"SecretId":"exists","SecretString":"` + secretValue + `","SecretBinary":"AA=="}`, 400, ErrInvalidParameter},
		{"no value", OpPutSecretValue, `{"SecretId":"exists"}`, 400, ErrInvalidRequest},
		{"label too long", OpPutSecretValue, `{"SecretId":"exists","SecretString":"x","VersionStages":["` + strings.Repeat("l", 257) + `"]}`, 400, ErrValidation},
		{"too many labels", OpPutSecretValue, `{"SecretId":"exists","SecretString":"x","VersionStages":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]}`, 400, ErrValidation},
		{"bad filter key", OpListSecrets, `{"Filters":[{"Key":"colour","Values":["x"]}]}`, 400, ErrValidation},
		{"bad filter value", OpListSecrets, `{"Filters":[{"Key":"name","Values":["a*b"]}]}`, 400, ErrValidation},
		{"page too big", OpListSecrets, `{"MaxResults":101}`, 400, ErrValidation},
		{"batch page too big", OpBatchGetSecretValue, `{"Filters":[{"Key":"name","Values":["a"]}],"MaxResults":21}`, 400, ErrValidation},
		{"bad token", OpListSecrets, `{"NextToken":"%%%"}`, 400, ErrInvalidNextToken},
		{"bad sort", OpListSecrets, `{"SortOrder":"sideways"}`, 400, ErrValidation},
		{"extra members ignored", OpDescribeSecret, `{"SecretId":"exists","Whatever":[1]}`, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := signedRequest(t, "http://emulator", tc.op, tc.body)
			status, code, body := serve(t, e, req)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s, want %d %s: %.300s", status, code, tc.status, tc.code, body)
			}
			if strings.Contains(string(body), secretValue) || (status != 200 && strings.Contains(string(body), "xxxxxxxx")) {
				t.Fatalf("the error echoes the secret value")
			}
		})
	}

	t.Run("body over the limit", func(t *testing.T) {
		req := signedRequest(t, "http://emulator", OpCreateSecret, `{"Name":"x","SecretString":"`+strings.Repeat("y", maxBodyBytes)+`"}`)
		status, _, _ := serve(t, e, req)
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("GET", func(t *testing.T) {
		req := signedRequest(t, "http://emulator", OpListSecrets, "")
		req.Method = http.MethodGet
		if _, code, _ := serve(t, e, req); code != ErrUnknownOperation {
			t.Fatalf("GET answered %s", code)
		}
	})
	t.Run("no date header", func(t *testing.T) {
		req := signedRequest(t, "http://emulator", OpListSecrets, "{}")
		req.Header.Del("X-Amz-Date")
		if _, code, _ := serve(t, e, req); code != ErrIncompleteSignature {
			t.Fatalf("answered %s", code)
		}
	})
}

// FuzzHandler feeds the handler random operations and bodies. Whatever
// comes in, the answer is a JSON object with 200, or a typed error with
// 400 or 413; never a crash, a hang or a server fault. The seed corpus runs
// as a normal test.
func FuzzHandler(f *testing.F) {
	for _, op := range Operations() {
		f.Add(op, []byte(`{}`))
		f.Add(op, []byte(`{"SecretId":"seeded"}`))
		f.Add(op, []byte(`{"SecretId":"seeded","Name":"n","SecretString":"v","VersionStages":["AWSCURRENT"],"Tags":[{"Key":"k","Value":"v"}]}`))
		f.Add(op, []byte(`{"SecretId":"seeded","VersionStage":"AWSCURRENT","MoveToVersionId":"00000000-0000-4000-8000-000000000000"}`))
		f.Add(op, []byte(`{"Filters":[{"Key":"all","Values":["!x"]}],"MaxResults":1,"NextToken":"TGlzdFNlY3JldHM6MQ"}`))
		f.Add(op, []byte(`{"SecretIdList":["seeded","nope"],"RecoveryWindowInDays":7,"ForceDeleteWithoutRecovery":true}`))
		f.Add(op, []byte(`{"SecretId":"seeded","RotationRules":{"ScheduleExpression":"rate(1 days)","Duration":"2h"}}`))
	}
	f.Add("", []byte(`{`))
	f.Add("NoSuchOp", []byte(`null`))
	f.Add(OpCreateSecret, []byte(`{"Name":"x","SecretBinary":"AAECAwQ="}`))
	f.Add(OpGetSecretValue, []byte("\xff\xfe\x00"))
	f.Add(OpListSecrets, []byte(`{"MaxResults":1e400}`))

	e := New()
	if _, err := e.CreateSecret(Secret{Name: "seeded", SecretString: str(`{"password":"p"}`)}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		req := signedRequest(t, "http://emulator", op, string(body))
		if strings.ContainsAny(op, "\r\n\x00") {
			req.Header.Set("X-Amz-Target", "secretsmanager.invalid")
		}
		status, code, out := serve(t, e, req)
		switch status {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if code == ErrInternalServiceError {
				t.Fatalf("client error with a server type: %s", out)
			}
			// An error never echoes a value the request carried.
			var in struct{ SecretString string }
			if json.Unmarshal(body, &in) == nil && len(in.SecretString) >= 8 && strings.Contains(string(out), in.SecretString) {
				t.Fatalf("the %s error echoes the request's SecretString: %s", code, out)
			}
		default:
			t.Fatalf("status %d (%s) for op %q: %s", status, code, op, fmt.Sprintf("%.200s", out))
		}
		// Whatever the request did, the emulator still answers.
		for _, check := range []struct{ op, body string }{{OpListSecrets, `{"IncludePlannedDeletion":true}`}, {OpDescribeSecret, `{"SecretId":"seeded"}`}} {
			status, code, out := serve(t, e, signedRequest(t, "http://emulator", check.op, check.body))
			if status != http.StatusOK && code != ErrResourceNotFound {
				t.Fatalf("after op %q, %s answers %d %s: %.200s", op, check.op, status, code, out)
			}
		}
	})
}
