package emulator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// tokenAlgorithms are the signature algorithms accepted in web identity
// tokens: those an OIDC issuer, kube-apiserver's included, signs with.
func tokenAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512}
}

// tokenProblem is why a web identity token is refused.
type tokenProblem int

const (
	tokenInvalid tokenProblem = iota + 1 // malformed, unknown issuer, bad signature, wrong audience, not yet valid
	tokenExpired
)

// tokenError is a refused token: the problem and a message for the caller.
type tokenError struct {
	problem tokenProblem
	msg     string
}

func (t *tokenError) Error() string { return t.msg }

func invalidToken(format string, args ...any) *tokenError {
	return &tokenError{problem: tokenInvalid, msg: fmt.Sprintf(format, args...)}
}

// webIdentity is what a verified token says.
type webIdentity struct {
	issuer, subject, audience string
	kubernetes                kubetoken.KubernetesClaim
}

// verifyWebToken checks a JWT as AWS does before trusting it: its issuer
// is one of m's, its signature verifies with one of that issuer's keys
// (the one its "kid" names), audience is among its "aud", and now is
// within its "nbf" and "exp". The caller holds mu.
func verifyWebToken(m *iamModel, raw, audience string, now time.Time) (*webIdentity, *tokenError) {
	if m == nil {
		return nil, invalidToken("%v", errNoIAM)
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(raw), tokenAlgorithms())
	if err != nil || len(tok.Headers) != 1 {
		return nil, invalidToken("The web identity token is not a valid JWT (a signed compact JWS with one signature, algorithm RS256, ES256 or similar).")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidToken("The web identity token's claims are not valid JSON.")
	}
	keys, ok := m.issuers[unverified.Issuer]
	if !ok {
		return nil, invalidToken("No OpenIDConnect provider found in your account for %s", unverified.Issuer)
	}
	candidates := keys.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		candidates = keys.Key(kid)
	}
	var claims jwt.Claims
	var private kubetoken.PrivateClaims
	verified := false
	for _, k := range candidates {
		if tok.Claims(k.Key, &claims, &private) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidToken("The web identity token's signature does not verify with any key of the provider %s.", unverified.Issuer)
	}
	if claims.Expiry == nil {
		return nil, invalidToken("The web identity token has no expiration date (exp).")
	}
	expired := func() *tokenError {
		return &tokenError{problem: tokenExpired, msg: fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), claims.Expiry.Time().Unix())}
	}
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: unverified.Issuer, AnyAudience: jwt.Audience{audience}, Time: now}, 0)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return nil, expired()
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalidToken("Incorrect token audience")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, invalidToken("The web identity token is not valid yet: current date/time %d is before its not-before or issued-at date/time", now.Unix())
	default:
		return nil, invalidToken("The web identity token is not valid: %v", err)
	}
	if !now.Before(claims.Expiry.Time()) {
		return nil, expired() // valid until just before exp, not at it
	}
	return &webIdentity{issuer: unverified.Issuer, subject: claims.Subject, audience: audience, kubernetes: private.Kubernetes}, nil
}
