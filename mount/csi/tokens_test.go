package csi

import (
	"strings"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// TestIssue14_13_IdentityGivesTheFreshestUnexpiredToken: an identity's
// token source gives, among its volumes' tokens, the unexpired one that
// expires last; once all have expired (no republish) it gives none and
// says when and why; a volume gone, its tokens are forgotten.
func TestIssue14_13_IdentityGivesTheFreshestUnexpiredToken(t *testing.T) {
	clock := cachetest.NewClock(time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC))
	p := newPodIdentity(identityKey{Namespace: "shop", ServiceAccount: "app", Role: roleA, Region: "us-east-1"}, clock)
	now := clock.Now()
	p.set("/a", tokens{cache.AudienceSTS: {value: "tok-a", expires: now.Add(10 * time.Minute)}})
	p.set("/b", tokens{cache.AudienceSTS: {value: "tok-b", expires: now.Add(20 * time.Minute)}})
	if tok, err := p.Token(cache.AudienceSTS); err != nil || tok != "tok-b" {
		t.Fatalf("Token = %q, %v; want tok-b (expires last)", tok, err)
	}
	if _, err := p.Token(cache.AudiencePodIdentity); err == nil || !strings.Contains(err.Error(), "no pods.eks.amazonaws.com token for service account shop/app") {
		t.Fatalf("Token for an audience never given: %v", err)
	}
	p.set("/b", tokens{cache.AudienceSTS: {value: "tok-b2", expires: now.Add(5 * time.Minute)}}) // republished
	if tok, _ := p.Token(cache.AudienceSTS); tok != "tok-a" {
		t.Fatalf("Token = %q after /b's republish, want tok-a", tok)
	}
	clock.Advance(11 * time.Minute)
	_, err := p.Token(cache.AudienceSTS)
	if err == nil || !strings.Contains(err.Error(), "expired at 2026-12-05T08:10:00Z") || strings.Contains(err.Error(), "tok-") {
		t.Fatalf("Token after every token expired: %v", err)
	}
	if p.drop("/a") {
		t.Fatal("drop reported no volume left while /b has one")
	}
	if !p.drop("/b") {
		t.Fatal("drop of the last volume did not report it")
	}
}

// TestIssue14_13_TokensJSONErrorsQuoteNoToken: kubelet's tokens JSON,
// malformed or incomplete, is refused without quoting it.
func TestIssue14_13_TokensJSONErrorsQuoteNoToken(t *testing.T) {
	for _, s := range []string{`{"sts.amazonaws.com":{"token":"SECRETJWT"`, `{"sts.amazonaws.com":{"token":"SECRETJWT"}}`, `{"sts.amazonaws.com":"SECRETJWT"}`} {
		_, err := parseTokens(s)
		if err == nil || strings.Contains(err.Error(), "SECRETJWT") {
			t.Errorf("parseTokens(%s) = %v; want an error without the token", s, err)
		}
	}
}
