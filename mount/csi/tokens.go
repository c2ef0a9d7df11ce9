package csi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/secretsfs/secretsfs/cache"
)

// token is one service-account token that kubelet passed.
type token struct {
	value   string
	expires time.Time
}

// tokens are the tokens of one volume, by audience.
type tokens map[string]token

// parseTokens reads kubelet's csi.storage.k8s.io/serviceAccount.tokens:
// {"AUDIENCE":{"token":"JWT","expirationTimestamp":"RFC3339"},...}. Its
// errors never quote a token.
func parseTokens(s string) (tokens, error) {
	var raw map[string]struct {
		Token      string    `json:"token"`
		Expiration time.Time `json:"expirationTimestamp"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("is not kubelet's JSON of tokens by audience ({\"sts.amazonaws.com\":{\"token\":...,\"expirationTimestamp\":...}}): %v", jsonProblem(err))
	}
	out := make(tokens, len(raw))
	for aud, t := range raw {
		if t.Token == "" || t.Expiration.IsZero() {
			return nil, fmt.Errorf("the token for audience %q lacks its token or expirationTimestamp", aud)
		}
		out[aud] = token{value: t.Token, expires: t.Expiration}
	}
	return out, nil
}

// jsonProblem words a JSON error without quoting the input (which holds
// tokens).
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("%s is a JSON %s, want %s", e.Field, e.Value, e.Type)
	}
	return "malformed JSON"
}

// subject is the JWT claim that names the service account a token is for.
func subject(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// checkSubject verifies, without checking the signature (STS or the agent
// does), that jwt is a JWT whose sub is the pod's service account: a token
// of another service account would read another identity's secrets under
// this one's cache.
func checkSubject(jwt, sub string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return fmt.Errorf("is not a JWT (its payload is not base64url)")
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return fmt.Errorf("is not a JWT (its payload is not JSON)")
	}
	if claims.Sub != sub {
		return fmt.Errorf("is for %q, not the pod's service account %q", claims.Sub, sub)
	}
	return nil
}

// identityKey names whom a volume reads secrets as: volumes with the same
// key share one podIdentity, so one cache.
type identityKey struct {
	Namespace, ServiceAccount string
	// Role is the IAM role's ARN (IRSA), or podIdentityRole.
	Role   string
	Region string
}

// podIdentityRole stands for the role that the EKS Pod Identity
// association of the service account names.
const podIdentityRole = "pod-identity"

func (k identityKey) String() string {
	return fmt.Sprintf("%s/%s role=%s region=%s", k.Namespace, k.ServiceAccount, k.Role, k.Region)
}

// audience is the audience of the token the key's credentials come from.
func (k identityKey) audience() string {
	if k.Role == podIdentityRole {
		return cache.AudiencePodIdentity
	}
	return cache.AudienceSTS
}

// podIdentity holds, in memory only, the tokens of an identity's volumes
// (by target path) and gives the freshest unexpired one to the
// credentials providers (cache.TokenSource). Its pointer is the identity
// in the cache.Identity of its volumes.
type podIdentity struct {
	key   identityKey
	clock cache.Clock

	mu     sync.Mutex
	tokens map[string]tokens // by target path; guarded by mu
}

var _ cache.TokenSource = (*podIdentity)(nil)

func newPodIdentity(key identityKey, clock cache.Clock) *podIdentity {
	return &podIdentity{key: key, clock: clock, tokens: map[string]tokens{}}
}

// set records the tokens of the volume at target, replacing those it had.
func (p *podIdentity) set(target string, t tokens) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[target] = t
}

// drop forgets the volume at target and reports whether no volume is left.
func (p *podIdentity) drop(target string) (empty bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tokens, target)
	return len(p.tokens) == 0
}

// Token returns the unexpired token for audience that expires last, among
// those of every volume of the identity.
func (p *podIdentity) Token(audience string) (string, error) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var best, last token
	for _, ts := range p.tokens {
		t, ok := ts[audience]
		if !ok {
			continue
		}
		if t.expires.After(last.expires) {
			last = t
		}
		if now.Before(t.expires) && t.expires.After(best.expires) {
			best = t
		}
	}
	switch {
	case best.value != "":
		return best.value, nil
	case last.value != "":
		return "", fmt.Errorf("the %s token of service account %s/%s expired at %s; kubelet sends a fresh one when it republishes the volume (CSIDriver requiresRepublish: true)",
			audience, p.key.Namespace, p.key.ServiceAccount, last.expires.UTC().Format(time.RFC3339))
	}
	return "", fmt.Errorf("no %s token for service account %s/%s; the CSIDriver must request it (tokenRequests)", audience, p.key.Namespace, p.key.ServiceAccount)
}
