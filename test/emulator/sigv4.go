package emulator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// secretsManagerService is the service name in a SigV4 credential scope.
const secretsManagerService = "secretsmanager"

// amzDateFormat is the layout of the X-Amz-Date header.
const amzDateFormat = "20060102T150405Z"

// sigV4Auth is a parsed SigV4 Authorization header.
type sigV4Auth struct {
	keyID, date, region, service string
	signedHeaders                []string
	signature                    string
}

// parseSigV4 parses an Authorization header that sigV4Header matched.
func parseSigV4(header string) (sigV4Auth, bool) {
	var a sigV4Auth
	rest, ok := strings.CutPrefix(header, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return a, false
			}
			a.keyID, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	return a, a.keyID != "" && len(a.signedHeaders) > 0 && a.signature != ""
}

// accessKeyOf returns the access key id a request was signed with, or "".
func accessKeyOf(r *http.Request) string {
	a, _ := parseSigV4(r.Header.Get("Authorization"))
	return a.keyID
}

// authenticate finds who signed a Secrets Manager request and verifies its
// signature, with the errors the service sends. It returns nil, nil when
// no IAM model is set: any well-formed signature is then accepted. The
// request's date is not compared with the emulator's clock, which tests
// move freely.
func (e *Emulator) authenticate(r *http.Request, body []byte) (*principal, *Error) {
	a, ok := parseSigV4(r.Header.Get("Authorization"))
	e.mu.Lock()
	m := e.iam
	if m == nil {
		e.mu.Unlock()
		return nil, nil
	}
	if !ok {
		e.mu.Unlock()
		return nil, newError(ErrIncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters of AWS4-HMAC-SHA256.")
	}
	token := r.Header.Get("X-Amz-Security-Token")
	var p principal
	var secret string
	if k, ok := m.keys[a.keyID]; ok {
		if token != "" {
			e.mu.Unlock()
			return nil, errInvalidToken()
		}
		p = principal{arn: k.arn, identity: k.arn, policy: k.policy}
		secret = k.SecretAccessKey
	} else if s, ok := e.sessions[a.keyID]; ok {
		switch {
		case !hmac.Equal([]byte(token), []byte(s.token)):
			e.mu.Unlock()
			return nil, errInvalidToken()
		case !e.clock.Now().Before(s.expires):
			e.mu.Unlock()
			return nil, newError(ErrExpiredToken, "The security token included in the request is expired")
		}
		policy := compilePolicy(Policy{})
		if role, ok := m.roles[s.roleARN]; ok {
			policy = role.policy
		}
		p = principal{arn: s.callerARN, identity: s.roleARN, policy: policy}
		secret = s.secret
	} else {
		e.mu.Unlock()
		return nil, errInvalidToken()
	}
	e.mu.Unlock()
	if a.service != secretsManagerService {
		return nil, newError(ErrInvalidSignature, "Credential should be scoped to correct service: '%s'. ", secretsManagerService)
	}
	if !signatureValid(r, body, a, secret, token) {
		return nil, newError(ErrInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return &p, nil
}

// errInvalidToken is the service's answer to an unknown access key, or a
// session token that is not the key's.
func errInvalidToken() *Error {
	return newError(ErrUnrecognizedClient, "The security token included in the request is invalid.")
}

// signatureValid signs the request again with the SDK's SigV4 signer,
// with the secret key, the date, the scope and the headers the client
// signed, and compares the signatures.
func signatureValid(r *http.Request, body []byte, a sigV4Auth, secret, token string) bool {
	at, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil || at.Format("20060102") != a.date {
		return false
	}
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	again := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: make(http.Header)}
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	creds := aws.Credentials{AccessKeyID: a.keyID, SecretAccessKey: secret, SessionToken: token}
	signedToken := slices.Contains(a.signedHeaders, "x-amz-security-token")
	err = v4.NewSigner().SignHTTP(context.Background(), creds, again, hash, a.service, a.region, at, func(o *v4.SignerOptions) {
		o.DisableSessionToken = !signedToken
	})
	if err != nil {
		return false
	}
	want, ok := parseSigV4(again.Header.Get("Authorization"))
	return ok && hmac.Equal([]byte(want.signature), []byte(strings.ToLower(a.signature)))
}
