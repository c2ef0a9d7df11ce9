package emulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secretsfs/secretsfs/test/kubetoken"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// The IAM model of the IAM tests: a cluster issuer; role "app" for the
// service account shop/app through IRSA, reading app/*; role "web" for
// shop/web through Pod Identity, reading web/token by ARN pattern and
// listing; a node key that may do nothing; an admin key.
const (
	testIssuerURL  = "https://oidc.emulator.test/id/CLUSTER"
	appRoleARN     = "arn:aws:iam::123456789012:role/app"
	webRoleARN     = "arn:aws:iam::123456789012:role/team/web"
	nodeKeyID      = "AKIANODEKEY0000000"
	nodeKeySecret  = "node-secret-access-key"
	nodeUserARN    = "arn:aws:iam::123456789012:user/node"
	adminKeyID     = "AKIAADMINKEY000000"
	adminKeySecret = "admin-secret-access-key"
)

// iamFixture is a fixture with the IAM tests' model and secrets, its clock
// set to the real time (the SDK's credential caches read the real clock).
type iamFixture struct {
	*fixture
	issuer *kubetoken.Issuer
	now    time.Time
}

func newIAMFixture(t *testing.T) *iamFixture {
	t.Helper()
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Second)
	f.clock.Set(now)
	iss, err := kubetoken.NewIssuer(testIssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"app/db", "app/api-key", "web/token", "shared/config"} {
		mustCreate(t, f.emu, Secret{Name: n, SecretString: str("value of " + n)})
	}
	if err := f.emu.SetIAM(testIAM(iss)); err != nil {
		t.Fatalf("SetIAM: %v", err)
	}
	return &iamFixture{fixture: f, issuer: iss, now: now}
}

func testIAM(iss *kubetoken.Issuer) IAM {
	return IAM{
		Issuers: []Issuer{{URL: iss.URL(), JWKS: iss.JWKS()}},
		Roles: []Role{
			{ARN: appRoleARN, TrustIssuer: iss.URL(), TrustSubjects: []string{kubetoken.Subject("shop", "app")},
				Policy: Policy{Secrets: []string{"app/*"}}},
			{ARN: webRoleARN, MaxSessionDurationSeconds: 7200,
				Policy: Policy{Secrets: []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:web/token-??????"}, ListSecrets: true}},
		},
		PodIdentityAssociations: []PodIdentityAssociation{{Namespace: "shop", ServiceAccount: "web", RoleARN: webRoleARN}},
		AccessKeys: []AccessKey{
			{AccessKeyID: nodeKeyID, SecretAccessKey: nodeKeySecret, User: "node"},
			{AccessKeyID: adminKeyID, SecretAccessKey: adminKeySecret, User: "admin", Policy: Policy{Admin: true}},
		},
	}
}

// token returns a token of the fixture's issuer for namespace/sa with the
// audience, issued now on the emulator's clock, valid an hour.
func (f *iamFixture) token(t *testing.T, namespace, sa, audience string) string {
	t.Helper()
	return f.mint(t, f.issuer, kubetoken.Claims{Namespace: namespace, ServiceAccount: sa, Audience: audience})
}

// mint returns a token of iss for c, where c's namespace, service account
// and audience must be set and its dates default to now on the emulator's
// clock and an hour. Its pod is SA-pod.
func (f *iamFixture) mint(t *testing.T, iss *kubetoken.Issuer, c kubetoken.Claims) string {
	t.Helper()
	if c.IssuedAt.IsZero() {
		c.IssuedAt = f.clock.Now()
	}
	c.PodName = c.ServiceAccount + "-pod"
	tok, err := iss.Token(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// minter returns mint with namespace/sa and audience as the defaults of
// the claims it is given.
func (f *iamFixture) minter(t *testing.T, namespace, sa, audience string) func(*kubetoken.Issuer, kubetoken.Claims) string {
	return func(iss *kubetoken.Issuer, c kubetoken.Claims) string {
		t.Helper()
		if c.Namespace == "" {
			c.Namespace, c.ServiceAccount = namespace, sa
		}
		if c.Audience == "" {
			c.Audience = audience
		}
		return f.mint(t, iss, c)
	}
}

// stsClient is a real STS client of the emulator, retries off.
func (f *iamFixture) stsClient() *sts.Client {
	return sts.NewFromConfig(aws.Config{Region: "us-east-1"}, func(o *sts.Options) {
		o.BaseEndpoint = aws.String(f.srv.URL())
		o.Retryer = aws.NopRetryer{}
	})
}

// staticToken is a web identity token held in memory.
type staticToken string

func (s staticToken) GetIdentityToken() ([]byte, error) { return []byte(s), nil }

// irsaProvider is the SDK's web identity provider (IRSA) for roleARN with
// token, against the emulator's STS.
func (f *iamFixture) irsaProvider(roleARN, token string) aws.CredentialsProvider {
	return stscreds.NewWebIdentityRoleProvider(f.stsClient(), roleARN, staticToken(token), func(o *stscreds.WebIdentityRoleOptions) {
		o.RoleSessionName = "test-session"
	})
}

// podIdentityProvider is the SDK's container credentials provider with a
// Pod Identity token, against the emulator's agent endpoint.
func (f *iamFixture) podIdentityProvider(token string) *endpointcreds.Provider {
	return endpointcreds.New(f.srv.URL()+PodIdentityPath, func(o *endpointcreds.Options) {
		o.AuthorizationToken = token
		o.Retryer = aws.NopRetryer{}
	})
}

// clientWith is a Secrets Manager client of the emulator with creds.
func (f *iamFixture) clientWith(creds aws.CredentialsProvider) *secretsmanager.Client {
	return sdkClient(f.srv.URL(), func(o *secretsmanager.Options) { o.Credentials = creds })
}

// staticClient is a client signing with a fixed key.
func (f *iamFixture) staticClient(keyID, secret, token string) *secretsmanager.Client {
	return f.clientWith(credentials.NewStaticCredentialsProvider(keyID, secret, token))
}

// getValue reads a secret's current value with c.
func getValue(ctx context.Context, c *secretsmanager.Client, id string) (string, error) {
	out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

// signedRaw builds a GetSecretValue request with body, signed by the SDK's
// SigV4 signer for service with the key, below the SDK's client.
func signedRaw(t *testing.T, url, keyID, secret, token, service, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", targetPrefix+OpGetSecretValue)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// withBody replaces a request's body after signing.
func withBody(req *http.Request, body string) {
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
}

// assertRawError sends req and checks the answer's error type; "" means
// success.
func assertRawError(t *testing.T, req *http.Request, code string) {
	t.Helper()
	status, body := testutil.Do(t, req)
	var out struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal([]byte(body), &out)
	if code == "" && status != http.StatusOK || out.Type != code {
		t.Fatalf("want %q (empty: success), got %d: %s", code, status, body)
	}
}
