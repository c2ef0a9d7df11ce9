// Package kubetoken makes Kubernetes service-account tokens for tests, as
// kube-apiserver makes them: JWTs signed (RS256) by an issuer's key, with
// the issuer, the subject "system:serviceaccount:NS:SA", the audiences, the
// dates (iat, nbf, exp) and the private "kubernetes.io" claim that names
// the namespace, the service account and the pod. It also writes the value
// kubelet hands a CSI driver in the volume context under
// [VolumeContextKey]: the tokens it requested, by audience.
//
// The emulator (test/emulator) is told an [Issuer]'s URL and public keys
// ([Issuer.JWKS]) and then verifies its tokens the way AWS STS and the EKS
// Pod Identity service do. Nothing here talks to a network.
package kubetoken

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// The audiences a CSI driver for AWS asks kubelet tokens for, and the
// volume context key under which kubelet passes them.
const (
	// AudienceSTS is the audience of tokens for STS
	// AssumeRoleWithWebIdentity (IAM roles for service accounts).
	AudienceSTS = "sts.amazonaws.com"
	// AudiencePodIdentity is the audience of tokens for the EKS Pod
	// Identity agent.
	AudiencePodIdentity = "pods.eks.amazonaws.com"
	// VolumeContextKey is the volume context key under which kubelet
	// passes the tokens a CSIDriver's tokenRequests asked for.
	VolumeContextKey = "csi.storage.k8s.io/serviceAccount.tokens"
)

// DefaultTTL is a token's lifetime when Claims.Expiry is not set: kubelet's
// default expirationSeconds for a projected token.
const DefaultTTL = time.Hour

// rsaBits is the size of an issuer's key, as kube-apiserver's usual keys.
const rsaBits = 2048

// Issuer signs service-account tokens with a key of its own. It is safe for
// concurrent use.
type Issuer struct {
	url    string
	kid    string
	key    *rsa.PrivateKey
	signer jose.Signer
}

// NewIssuer returns an issuer whose tokens carry url as "iss" (e.g.
// "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"), with a new RSA
// key. Two issuers made with the same URL have different keys, so that a
// test can forge a token that names a trusted issuer.
func NewIssuer(url string) (*Issuer, error) {
	if url == "" {
		return nil, errors.New("kubetoken: the issuer URL is empty")
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("kubetoken: generate the issuer key: %w", err)
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("kubetoken: make a signer: %w", err)
	}
	return &Issuer{url: url, kid: kid, key: key, signer: signer}, nil
}

// keyID is kube-apiserver's key id: the unpadded base64url SHA-256 of the
// public key's PKIX DER encoding.
func keyID(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("kubetoken: encode the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// URL returns the issuer URL, the tokens' "iss".
func (i *Issuer) URL() string { return i.url }

// KeyID returns the id of the signing key, the tokens' "kid" header.
func (i *Issuer) KeyID() string { return i.kid }

// JWKS returns the issuer's public key as a JSON Web Key Set, as an OIDC
// issuer serves it at its jwks_uri: {"keys": [{"kty": "RSA", "kid": ...,
// "use": "sig", "alg": "RS256", "n": ..., "e": ...}]}.
func (i *Issuer) JWKS() json.RawMessage {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: string(jose.RS256), Use: "sig"}}}
	out, err := json.Marshal(set)
	if err != nil {
		// An RSA public key always encodes.
		panic(fmt.Sprintf("kubetoken: encode the key set: %v", err))
	}
	return out
}

// Claims say what a token says. Namespace and ServiceAccount are required.
type Claims struct {
	// Namespace and ServiceAccount name the service account; the subject
	// is "system:serviceaccount:NAMESPACE:SERVICEACCOUNT".
	Namespace, ServiceAccount string
	// ServiceAccountUID is the service account's UID; a random UUID when
	// empty.
	ServiceAccountUID string
	// PodName and PodUID bind the token to a pod, as kubelet's tokens for
	// a pod's volumes are; no pod claim when PodName is empty. PodUID is a
	// random UUID when empty.
	PodName, PodUID string
	// Audience is the token's audience, e.g. AudienceSTS.
	Audience string
	// IssuedAt is "iat" and "nbf"; time.Now() when zero.
	IssuedAt time.Time
	// NotBefore overrides "nbf" when set.
	NotBefore time.Time
	// Expiry is "exp"; IssuedAt + DefaultTTL when zero.
	Expiry time.Time
}

// Subject returns the token subject of a service account.
func Subject(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// KubernetesClaim is the private "kubernetes.io" claim of a
// service-account token.
type KubernetesClaim struct {
	Namespace      string    `json:"namespace"`
	ServiceAccount NamedUID  `json:"serviceaccount"`
	Pod            *NamedUID `json:"pod,omitempty"`
}

// NamedUID names an object and gives its UID.
type NamedUID struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// PrivateClaims are the claims of a service-account token beyond the
// registered ones.
type PrivateClaims struct {
	Kubernetes KubernetesClaim `json:"kubernetes.io"`
}

// dates returns the token's iat, nbf and exp, defaults applied.
func (c Claims) dates() (iat, nbf, exp time.Time) {
	iat, nbf, exp = c.IssuedAt, c.NotBefore, c.Expiry
	if iat.IsZero() {
		iat = time.Now()
	}
	if nbf.IsZero() {
		nbf = iat
	}
	if exp.IsZero() {
		exp = iat.Add(DefaultTTL)
	}
	return iat, nbf, exp
}

// Token returns a signed token for c.
func (i *Issuer) Token(c Claims) (string, error) {
	if c.Namespace == "" || c.ServiceAccount == "" {
		return "", errors.New("kubetoken: Claims.Namespace and Claims.ServiceAccount are required")
	}
	if c.Audience == "" {
		return "", errors.New("kubetoken: Claims.Audience is required, e.g. kubetoken.AudienceSTS")
	}
	iat, nbf, exp := c.dates()
	saUID := c.ServiceAccountUID
	if saUID == "" {
		saUID = uuid.NewString()
	}
	priv := PrivateClaims{Kubernetes: KubernetesClaim{
		Namespace:      c.Namespace,
		ServiceAccount: NamedUID{Name: c.ServiceAccount, UID: saUID},
	}}
	if c.PodName != "" {
		podUID := c.PodUID
		if podUID == "" {
			podUID = uuid.NewString()
		}
		priv.Kubernetes.Pod = &NamedUID{Name: c.PodName, UID: podUID}
	}
	reg := jwt.Claims{
		Issuer:    i.url,
		Subject:   Subject(c.Namespace, c.ServiceAccount),
		Audience:  jwt.Audience{c.Audience},
		Expiry:    jwt.NewNumericDate(exp),
		NotBefore: jwt.NewNumericDate(nbf),
		IssuedAt:  jwt.NewNumericDate(iat),
		ID:        uuid.NewString(),
	}
	tok, err := jwt.Signed(i.signer).Claims(reg).Claims(priv).Serialize()
	if err != nil {
		return "", fmt.Errorf("kubetoken: sign the token: %w", err)
	}
	return tok, nil
}

// TokenStatus is one entry of kubelet's serviceAccount.tokens value: a
// token and when it expires.
type TokenStatus struct {
	Token               string
	ExpirationTimestamp time.Time
}

// MarshalJSON writes the entry as kubelet does: {"token": ...,
// "expirationTimestamp": RFC 3339 in UTC, to the second}.
func (s TokenStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Token               string `json:"token"`
		ExpirationTimestamp string `json:"expirationTimestamp"`
	}{s.Token, s.ExpirationTimestamp.UTC().Format(time.RFC3339)})
}

// UnmarshalJSON reads an entry as kubelet writes it.
func (s *TokenStatus) UnmarshalJSON(data []byte) error {
	var raw struct {
		Token               string    `json:"token"`
		ExpirationTimestamp time.Time `json:"expirationTimestamp"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	s.Token, s.ExpirationTimestamp = raw.Token, raw.ExpirationTimestamp
	return nil
}

// EncodeTokens returns kubelet's volume context value for tokens by
// audience: {"sts.amazonaws.com": {"token": "...", "expirationTimestamp":
// "2026-12-05T10:00:00Z"}, ...}. Use it to combine tokens of different
// issuers or dates; ServiceAccountTokens covers the usual case.
func EncodeTokens(tokens map[string]TokenStatus) (string, error) {
	out, err := json.Marshal(tokens)
	if err != nil {
		return "", fmt.Errorf("kubetoken: encode the tokens: %w", err)
	}
	return string(out), nil
}

// ServiceAccountTokens returns the value kubelet puts under
// VolumeContextKey for a pod of c's service account: one token per
// audience (c.Audience is ignored), each with c's dates.
func (i *Issuer) ServiceAccountTokens(c Claims, audiences ...string) (string, error) {
	if len(audiences) == 0 {
		return "", errors.New("kubetoken: ServiceAccountTokens needs at least one audience")
	}
	c.IssuedAt, c.NotBefore, c.Expiry = c.dates()
	tokens := make(map[string]TokenStatus, len(audiences))
	for _, aud := range audiences {
		c.Audience = aud
		tok, err := i.Token(c)
		if err != nil {
			return "", err
		}
		tokens[aud] = TokenStatus{Token: tok, ExpirationTimestamp: c.Expiry}
	}
	return EncodeTokens(tokens)
}
