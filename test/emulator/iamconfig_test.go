package emulator

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// TestSetIAMRefusesBadModels: every mistake is named with the member at
// fault, and a refused model changes nothing.
func TestSetIAMRefusesBadModels(t *testing.T) {
	iss, err := kubetoken.NewIssuer(testIssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	good := func() IAM { return testIAM(iss) }
	cases := []struct {
		name    string
		edit    func(*IAM)
		mention string
	}{
		{"issuer without URL", func(m *IAM) { m.Issuers[0].URL = "" }, "IAM.Issuers[0].URL"},
		{"issuer twice", func(m *IAM) { m.Issuers = append(m.Issuers, m.Issuers[0]) }, "IAM.Issuers[1].URL"},
		{"JWKS not JSON", func(m *IAM) { m.Issuers[0].JWKS = json.RawMessage(`[1]`) }, "IAM.Issuers[0].JWKS"},
		{"JWKS empty", func(m *IAM) { m.Issuers[0].JWKS = json.RawMessage(`{"keys": []}`) }, "has no keys"},
		{"role ARN", func(m *IAM) { m.Roles[0].ARN = "arn:aws:iam::123456789012:user/app" }, "IAM.Roles[0].ARN"},
		{"role account", func(m *IAM) { m.Roles[0].ARN = "arn:aws:iam::999999999999:role/app" }, "not the emulator's 123456789012"},
		{"role twice", func(m *IAM) { m.Roles[1].ARN = m.Roles[0].ARN }, "IAM.Roles[1].ARN"},
		{"unknown trust issuer", func(m *IAM) { m.Roles[0].TrustIssuer = "https://elsewhere" }, "IAM.Roles[0].TrustIssuer"},
		{"trust without subjects", func(m *IAM) { m.Roles[0].TrustSubjects = nil }, "IAM.Roles[0].TrustSubjects is empty"},
		{"subjects without issuer", func(m *IAM) { m.Roles[1].TrustSubjects = []string{"system:serviceaccount:a:b"} }, "IAM.Roles[1].TrustSubjects is set without TrustIssuer"},
		{"bad subject", func(m *IAM) { m.Roles[0].TrustSubjects = []string{"shop:app"} }, "IAM.Roles[0].TrustSubjects[0]"},
		{"session duration", func(m *IAM) { m.Roles[0].MaxSessionDurationSeconds = 60 }, "IAM.Roles[0].MaxSessionDurationSeconds"},
		{"association role", func(m *IAM) { m.PodIdentityAssociations[0].RoleARN = "arn:aws:iam::123456789012:role/none" }, "IAM.PodIdentityAssociations[0].RoleARN"},
		{"association twice", func(m *IAM) {
			m.PodIdentityAssociations = append(m.PodIdentityAssociations, m.PodIdentityAssociations[0])
		}, "IAM.PodIdentityAssociations[1]"},
		{"association without namespace", func(m *IAM) { m.PodIdentityAssociations[0].Namespace = "" }, "Namespace and ServiceAccount"},
		{"session-like key id", func(m *IAM) { m.AccessKeys[0].AccessKeyID = "ASIANODEKEY0000000" }, "IAM.AccessKeys[0].AccessKeyId"},
		{"short key id", func(m *IAM) { m.AccessKeys[0].AccessKeyID = "AKIA" }, "16 to 128"},
		{"key without secret", func(m *IAM) { m.AccessKeys[1].SecretAccessKey = "" }, "IAM.AccessKeys[1].SecretAccessKey"},
		{"key twice", func(m *IAM) { m.AccessKeys[1].AccessKeyID = m.AccessKeys[0].AccessKeyID }, "IAM.AccessKeys[1].AccessKeyId"},
	}
	e := New()
	for _, tc := range cases {
		m := good()
		tc.edit(&m)
		err := e.SetIAM(m)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: error %v does not mention %q", tc.name, err, tc.mention)
		}
	}
	if e.IAMEnabled() {
		t.Fatal("a refused model was set")
	}
	if err := e.SetIAM(good()); err != nil || !e.IAMEnabled() {
		t.Fatalf("the good model: %v", err)
	}
}

// TestIAMFromSeedFileAndControlEndpoint: the seed file carries an IAM
// model (as "secretsfs emulator --seed" loads it), the control endpoint
// replaces it and reports calls by identity.
func TestIAMFromSeedFileAndControlEndpoint(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	iss, err := kubetoken.NewIssuer(testIssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	model := testIAM(iss)
	seed, err := json.Marshal(map[string]any{
		"Secrets": []map[string]string{{"Name": "app/db", "SecretString": "value of app/db"}},
		"IAM":     model,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	sf, err := LoadSeedFile(path)
	if err != nil {
		t.Fatalf("LoadSeedFile: %v", err)
	}
	if err := f.emu.Seed(sf); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	fx := &iamFixture{fixture: f, issuer: iss, now: f.clock.Now()}
	node := fx.staticClient(nodeKeyID, nodeKeySecret, "")
	_, err = getValue(ctx, node, "app/db")
	wantCode(t, err, ErrAccessDenied)

	// A misspelt member of the IAM model is refused by name.
	bad := strings.Replace(string(seed), `"TrustSubjects"`, `"TrustSubject"`, 1)
	if _, err := ParseSeed(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "TrustSubject") {
		t.Fatalf("misspelt member: %v", err)
	}

	cc := NewControlClient(f.srv.URL(), nil)
	model.AccessKeys[0].Policy = Policy{Secrets: []string{"app/db"}}
	if err := cc.SetIAM(ctx, model); err != nil {
		t.Fatalf("SetIAM over HTTP: %v", err)
	}
	if v, err := getValue(ctx, node, "app/db"); err != nil || v != "value of app/db" {
		t.Fatalf("after the node key got app/db: %q, %v", v, err)
	}
	model.Roles[0].ARN = "arn:aws:iam::1:role/x"
	if err := cc.SetIAM(ctx, model); err == nil || !strings.Contains(err.Error(), "IAM.Roles[0].ARN") {
		t.Fatalf("a bad model over HTTP: %v", err)
	}
	by, err := cc.CallsByIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]map[string]int{nodeUserARN: {OpGetSecretValue: 2}}; !maps.EqualFunc(by, want, maps.Equal) {
		t.Fatalf("CallsByIdentity over HTTP = %v, want %v", by, want)
	}
	if calls, err := cc.Calls(ctx); err != nil || calls[OpGetSecretValue] != 2 {
		t.Fatalf("Calls over HTTP = %v, %v", calls, err)
	}
	if err := cc.ResetCalls(ctx); err != nil {
		t.Fatal(err)
	}
	if by, err := cc.CallsByIdentity(ctx); err != nil || len(by) != 0 {
		t.Fatalf("after ResetCalls: %v, %v", by, err)
	}
}
