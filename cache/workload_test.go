package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// errTokens is a TokenSource that has no token.
type errTokens struct{}

func (*errTokens) Token(audience string) (string, error) {
	return "", errors.New("no token for " + audience)
}

// TestIssue14_10_WorkloadTakesNothingOfTheProcess: a Workload's client is
// refused with a profile or a static key beside it (they would be the
// process's credentials), needs its region, and its text names the
// workload, not its tokens.
func TestIssue14_10_WorkloadTakesNothingOfTheProcess(t *testing.T) {
	w := Workload{Namespace: "shop", ServiceAccount: "app", Tokens: &errTokens{}}
	for name, tc := range map[string]struct {
		id   Identity
		want string
	}{
		"profile":    {Identity{Region: "us-east-1", Profile: "node", Workload: w}, "give no Profile or static key"},
		"static key": {Identity{Region: "us-east-1", StaticKeyID: "AKID", StaticSecretKey: "k", Workload: w}, "give no Profile or static key"},
		"no region":  {Identity{Workload: w}, "a Workload needs a Region"},
		"bad agent":  {Identity{Region: "us-east-1", Workload: Workload{Tokens: w.Tokens, AgentURL: "169.254.170.23"}}, "not an absolute http(s) URL"},
	} {
		if _, err := NewClient(context.Background(), tc.id, "test"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewClient = %v, want an error saying %q", name, err, tc.want)
		}
	}
	id := Identity{Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/app", Workload: w}
	if _, err := NewClient(context.Background(), id, "test"); err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if s := id.String(); !strings.Contains(s, "workload=shop/app") {
		t.Fatalf("String() = %s, want the workload named", s)
	}
}

// TestIssue14_10_WorkloadWithoutTokenMakesNoCall: with no token for its
// audience, a Workload's client fails before any request, whatever
// credentials the process's environment holds.
func TestIssue14_10_WorkloadWithoutTokenMakesNoCall(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDPROCESS")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
	for _, role := range []string{"arn:aws:iam::123456789012:role/app", ""} {
		id := Identity{Region: "us-east-1", EndpointURL: "http://127.0.0.1:1", RoleARN: role,
			Workload: Workload{Namespace: "shop", ServiceAccount: "app", Tokens: &errTokens{}, STSEndpoint: "http://127.0.0.1:1", AgentURL: "http://127.0.0.1:1/v1/credentials"}}
		client, err := NewClient(context.Background(), id, "test")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := client.Options().Credentials.Retrieve(context.Background())
		want := AudienceSTS
		if role == "" {
			want = AudiencePodIdentity
		}
		if err == nil || !strings.Contains(err.Error(), "no token for "+want) || creds.AccessKeyID == "AKIDPROCESS" {
			t.Errorf("role %q: credentials %q, %v; want the %s token's absence", role, creds.AccessKeyID, err, want)
		}
	}
}

// TestIssue14_11_CloseWipesValues: once closed, the cache holds no value
// (the identity's last volume gone, nothing lingers); a read afterwards
// fetches again.
func TestIssue14_11_CloseWipesValues(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s3cret")
	if v, err := e.c.GetSecretString(context.Background(), "db"); err != nil || v != "s3cret" {
		t.Fatalf("read: %q, %v", v, err)
	}
	e.c.Close()
	held := 0
	e.c.secrets.each(func(_ string, se *secretEntry) {
		se.versions.each(func(_ string, v *versionEntry) {
			if v.hasValue || v.stored != nil {
				held++
			}
		})
	})
	if held != 0 {
		t.Fatalf("%d values held after Close", held)
	}
	before := e.client.Calls(opG)
	if v, err := e.c.GetSecretString(context.Background(), "db"); err != nil || v != "s3cret" {
		t.Fatalf("read after Close: %q, %v", v, err)
	}
	if e.client.Calls(opG) != before+1 {
		t.Fatalf("the read after Close made %d value calls, want 1", e.client.Calls(opG)-before)
	}
}
