package kubetoken

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestTokenIsKubeAPIServers checks a token against the issuer's published
// key set, as a relying party does, and its claims against what
// kube-apiserver writes.
func TestTokenIsKubeAPIServers(t *testing.T) {
	iss, err := NewIssuer("https://oidc.example.test/id/ONE")
	if err != nil {
		t.Fatal(err)
	}
	iat := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	raw, err := iss.Token(Claims{Namespace: "shop", ServiceAccount: "app", ServiceAccountUID: "sa-uid", PodName: "app-0", PodUID: "pod-uid", Audience: AudienceSTS, IssuedAt: iat})
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(iss.JWKS(), &set); err != nil {
		t.Fatalf("JWKS is not a key set: %v", err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("the token is not an RS256 JWT: %v", err)
	}
	if h := tok.Headers[0]; h.KeyID != iss.KeyID() || h.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header: kid %q (want %q), typ %v", h.KeyID, iss.KeyID(), h.ExtraHeaders["typ"])
	}
	keys := set.Key(iss.KeyID())
	if len(keys) != 1 {
		t.Fatalf("the key set has %d keys of id %q", len(keys), iss.KeyID())
	}
	var reg jwt.Claims
	var priv PrivateClaims
	if err := tok.Claims(keys[0].Key, &reg, &priv); err != nil {
		t.Fatalf("the signature does not verify with the published key: %v", err)
	}
	if err := reg.ValidateWithLeeway(jwt.Expected{Issuer: iss.URL(), AnyAudience: jwt.Audience{AudienceSTS}, Time: iat.Add(59 * time.Minute)}, 0); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if reg.Subject != "system:serviceaccount:shop:app" || !reg.Expiry.Time().Equal(iat.Add(DefaultTTL)) ||
		!reg.NotBefore.Time().Equal(iat) || !reg.IssuedAt.Time().Equal(iat) || reg.ID == "" {
		t.Fatalf("registered claims: %+v", reg)
	}
	want := KubernetesClaim{Namespace: "shop", ServiceAccount: NamedUID{"app", "sa-uid"}, Pod: &NamedUID{"app-0", "pod-uid"}}
	if priv.Kubernetes.Namespace != want.Namespace || priv.Kubernetes.ServiceAccount != want.ServiceAccount || *priv.Kubernetes.Pod != *want.Pod {
		t.Fatalf("kubernetes.io claim: %+v", priv.Kubernetes)
	}

	other, err := NewIssuer(iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	if other.KeyID() == iss.KeyID() {
		t.Fatal("two issuers share a key")
	}
	forged, err := other.Token(Claims{Namespace: "shop", ServiceAccount: "app", Audience: AudienceSTS})
	if err != nil {
		t.Fatal(err)
	}
	ftok, err := jwt.ParseSigned(forged, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if err := ftok.Claims(keys[0].Key, &reg); err == nil {
		t.Fatal("a token of another key verifies with the first issuer's key")
	}
}

func TestServiceAccountTokensIsKubeletsFormat(t *testing.T) {
	iss, err := NewIssuer("https://oidc.example.test/id/TWO")
	if err != nil {
		t.Fatal(err)
	}
	iat := time.Date(2026, 12, 5, 10, 0, 0, 500, time.UTC)
	val, err := iss.ServiceAccountTokens(Claims{Namespace: "ns", ServiceAccount: "sa", IssuedAt: iat, Expiry: iat.Add(10 * time.Minute)}, AudienceSTS, AudiencePodIdentity)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]string
	if err := json.Unmarshal([]byte(val), &raw); err != nil {
		t.Fatalf("not a JSON object of objects: %v\n%s", err, val)
	}
	if len(raw) != 2 {
		t.Fatalf("audiences: %v", raw)
	}
	for _, aud := range []string{AudienceSTS, AudiencePodIdentity} {
		e := raw[aud]
		if len(e) != 2 || e["expirationTimestamp"] != "2026-12-05T10:10:00Z" || strings.Count(e["token"], ".") != 2 {
			t.Fatalf("entry for %s: %v", aud, e)
		}
		tok, err := jwt.ParseSigned(e["token"], []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil || !c.Audience.Contains(aud) || len(c.Audience) != 1 {
			t.Fatalf("the %s token's audience: %v (%v)", aud, c.Audience, err)
		}
	}
	var back map[string]TokenStatus
	if err := json.Unmarshal([]byte(val), &back); err != nil || !back[AudienceSTS].ExpirationTimestamp.Equal(iat.Add(10*time.Minute).Truncate(time.Second)) {
		t.Fatalf("TokenStatus does not read back: %v, %+v", err, back)
	}
}

func TestTokenRefusesIncompleteClaims(t *testing.T) {
	if _, err := NewIssuer(""); err == nil {
		t.Fatal("NewIssuer accepted an empty URL")
	}
	iss, err := NewIssuer("https://oidc.example.test/id/THREE")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Claims{
		{ServiceAccount: "sa", Audience: AudienceSTS},
		{Namespace: "ns", Audience: AudienceSTS},
		{Namespace: "ns", ServiceAccount: "sa"},
	} {
		if _, err := iss.Token(c); err == nil || !strings.Contains(err.Error(), "Claims.") {
			t.Fatalf("Token(%+v): %v", c, err)
		}
	}
	if _, err := iss.ServiceAccountTokens(Claims{Namespace: "ns", ServiceAccount: "sa"}); err == nil {
		t.Fatal("ServiceAccountTokens without audiences succeeded")
	}
}
