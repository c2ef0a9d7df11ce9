package emulator

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// TestPodIdentityEndpointRefusals asks the agent endpoint, through the
// SDK's provider, with what a misconfigured pod would send: each is
// refused with a 4xx JSON error whose code the SDK reports.
func TestPodIdentityEndpointRefusals(t *testing.T) {
	f := newIAMFixture(t)
	ctx := ctxT(t)
	now := f.clock.Now()
	forger, err := kubetoken.NewIssuer(testIssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	mint := f.minter(t, "shop", "web", kubetoken.AudiencePodIdentity)
	cases := []struct {
		name, token, code string
		status            int
	}{
		{"no token", "", ErrPodIdentityInvalidRequest, 400},
		{"expired", mint(f.issuer, kubetoken.Claims{IssuedAt: now.Add(-time.Hour), Expiry: now.Add(-time.Second)}), ErrExpiredToken, 400},
		{"STS audience", mint(f.issuer, kubetoken.Claims{Audience: kubetoken.AudienceSTS}), ErrPodIdentityInvalidToken, 400},
		{"wrong issuer key", mint(forger, kubetoken.Claims{}), ErrPodIdentityInvalidToken, 400},
		{"garbage", "x.y.z", ErrPodIdentityInvalidToken, 400},
		{"no association", mint(f.issuer, kubetoken.Claims{Namespace: "shop", ServiceAccount: "app"}), ErrPodIdentityNoAssociation, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.podIdentityProvider(tc.token).Retrieve(ctx)
			wantCode(t, err, tc.code)
			if got := httpStatus(t, err); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}

	// The answer as the agent writes it, read without the SDK.
	req, err := http.NewRequest(http.MethodGet, f.srv.URL()+PodIdentityPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", mint(f.issuer, kubetoken.Claims{}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out map[string]string
	if err := json.Unmarshal(data, &out); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %s (%s): %v", resp.Status, resp.Header.Get("Content-Type"), err)
	}
	if len(out) != 5 || !strings.HasPrefix(out["AccessKeyId"], "ASIA") || out["SecretAccessKey"] == "" || out["Token"] == "" ||
		out["AccountId"] != "123456789012" || out["Expiration"] != now.Add(PodIdentityCredentialDuration).Format(time.RFC3339) {
		t.Fatalf("answer members: %v", slices.Sorted(maps.Keys(out)))
	}
	req.Method = http.MethodPost
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}
	if n := f.emu.Calls(OpPodIdentityCredentials); n != len(cases)+2 {
		t.Fatalf("%d calls counted, want %d", n, len(cases)+2)
	}
}
