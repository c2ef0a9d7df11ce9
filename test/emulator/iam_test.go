package emulator

import (
	"encoding/xml"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secretsfs/secretsfs/test/kubetoken"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// deniedMessage is the AccessDeniedException message for caller reading
// resource with action.
func deniedMessage(caller, action, resource string) string {
	return "User: " + caller + " is not authorized to perform: secretsmanager:" + action + " on resource: " + resource +
		" because no identity-based policy allows the secretsmanager:" + action + " action"
}

// TestIAMEachIdentityReadsOnlyItsPolicysSecrets drives two pods'
// identities as a CSI driver gets them (IRSA through STS with the SDK's web
// identity provider, Pod Identity through the agent endpoint with the SDK's
// container provider) and a node's static key: each reads what its policy
// names and is refused the rest, by GetSecretValue, DescribeSecret and
// BatchGetSecretValue; the calls are counted by identity.
func TestIAMEachIdentityReadsOnlyItsPolicysSecrets(t *testing.T) {
	f := newIAMFixture(t)
	ctx := ctxT(t)
	app := f.clientWith(aws.NewCredentialsCache(f.irsaProvider(appRoleARN, f.token(t, "shop", "app", kubetoken.AudienceSTS))))
	web := f.clientWith(aws.NewCredentialsCache(f.podIdentityProvider(f.token(t, "shop", "web", kubetoken.AudiencePodIdentity))))
	node := f.staticClient(nodeKeyID, nodeKeySecret, "")
	appCaller := "arn:aws:sts::123456789012:assumed-role/app/test-session"
	webCaller := "arn:aws:sts::123456789012:assumed-role/web/eks-emulator-web-pod"

	for _, tc := range []struct {
		client  *secretsmanager.Client
		caller  string
		allowed []string
	}{
		{app, appCaller, []string{"app/db", "app/api-key"}},
		{web, webCaller, []string{"web/token"}},
		{node, nodeUserARN, nil},
	} {
		for _, name := range []string{"app/db", "app/api-key", "web/token", "shared/config"} {
			v, err := getValue(ctx, tc.client, name)
			_, derr := tc.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
			if slices.Contains(tc.allowed, name) {
				if err != nil || v != "value of "+name || derr != nil {
					t.Fatalf("%s reading %s: %q, %v; describe: %v", tc.caller, name, v, err, derr)
				}
				continue
			}
			ae := wantCode(t, err, ErrAccessDenied)
			if got, want := ae.ErrorMessage(), deniedMessage(tc.caller, OpGetSecretValue, name); got != want {
				t.Fatalf("message:\n got %s\nwant %s", got, want)
			}
			if httpStatus(t, err) != http.StatusBadRequest {
				t.Fatalf("GetSecretValue denial has status %d, want 400", httpStatus(t, err))
			}
			ae = wantCode(t, derr, ErrAccessDenied)
			if got, want := ae.ErrorMessage(), deniedMessage(tc.caller, OpDescribeSecret, name); got != want {
				t.Fatalf("message:\n got %s\nwant %s", got, want)
			}
		}
	}

	// A secret that does not exist: the caller whose policy would allow
	// it learns that; the others are denied.
	_, err := getValue(ctx, app, "app/missing")
	wantCode(t, err, ErrResourceNotFound)
	_, err = getValue(ctx, web, "app/missing")
	wantCode(t, err, ErrAccessDenied)

	batch, err := app.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app/db", "web/token", "app/missing", "shared/config"}})
	if err != nil {
		t.Fatalf("BatchGetSecretValue: %v", err)
	}
	if len(batch.SecretValues) != 1 || aws.ToString(batch.SecretValues[0].Name) != "app/db" || aws.ToString(batch.SecretValues[0].SecretString) != "value of app/db" {
		t.Fatalf("batch values: %+v", batch.SecretValues)
	}
	gotErrors := map[string]string{}
	for _, e := range batch.Errors {
		gotErrors[aws.ToString(e.SecretId)] = aws.ToString(e.ErrorCode)
		if aws.ToString(e.ErrorCode) == ErrAccessDenied && aws.ToString(e.Message) != deniedMessage(appCaller, OpGetSecretValue, aws.ToString(e.SecretId)) {
			t.Fatalf("batch error message: %s", aws.ToString(e.Message))
		}
	}
	if !maps.Equal(gotErrors, map[string]string{"web/token": ErrAccessDenied, "app/missing": ErrResourceNotFound, "shared/config": ErrAccessDenied}) {
		t.Fatalf("batch errors: %v", gotErrors)
	}
	// Filters need ListSecrets; web has it and sees only its secret's value.
	_, err = app.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}}})
	wantCode(t, err, ErrAccessDenied)
	wbatch, err := web.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"web/", "app/"}}}})
	if err != nil || len(wbatch.SecretValues) != 1 || aws.ToString(wbatch.SecretValues[0].Name) != "web/token" || len(wbatch.Errors) != 2 {
		t.Fatalf("web's filtered batch: %+v, %v", wbatch, err)
	}
	_, err = node.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app/db"}})
	wantCode(t, err, ErrAccessDenied)

	// ListSecrets is its own permission.
	_, err = app.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	ae := wantCode(t, err, ErrAccessDenied)
	if want := "User: " + appCaller + " is not authorized to perform: secretsmanager:ListSecrets because no identity-based policy allows the secretsmanager:ListSecrets action"; ae.ErrorMessage() != want {
		t.Fatalf("ListSecrets denial: %s", ae.ErrorMessage())
	}
	if l, err := web.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil || len(l.SecretList) != 4 {
		t.Fatalf("web's ListSecrets: %v, %v", l, err)
	}

	// Writes need Admin.
	_, err = app.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("x")})
	wantCode(t, err, ErrAccessDenied)
	admin := f.staticClient(adminKeyID, adminKeySecret, "")
	if _, err := admin.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/new"), SecretString: aws.String("value of app/new")}); err != nil {
		t.Fatalf("admin CreateSecret: %v", err)
	}
	if v, err := getValue(ctx, app, "app/new"); err != nil || v != "value of app/new" {
		t.Fatalf("app reading the new app/new: %q, %v", v, err)
	}

	by := f.emu.CallsByIdentity()
	want := map[string]map[string]int{
		appRoleARN:                             {OpAssumeRoleWithWebIdentity: 1, OpGetSecretValue: 6, OpDescribeSecret: 4, OpBatchGetSecretValue: 2, OpListSecrets: 1, OpPutSecretValue: 1},
		webRoleARN:                             {OpPodIdentityCredentials: 1, OpGetSecretValue: 5, OpDescribeSecret: 4, OpBatchGetSecretValue: 1, OpListSecrets: 1},
		nodeUserARN:                            {OpGetSecretValue: 4, OpDescribeSecret: 4, OpBatchGetSecretValue: 1},
		"arn:aws:iam::123456789012:user/admin": {OpCreateSecret: 1},
	}
	if !maps.EqualFunc(by, want, maps.Equal) {
		t.Fatalf("CallsByIdentity:\n got %v\nwant %v", by, want)
	}
}

// TestIAMWebIdentityTokenRefusals sends AssumeRoleWithWebIdentity what a
// misconfigured or hostile pod would, with the SDK's STS client: each is
// refused with STS's code, and no credentials come out.
func TestIAMWebIdentityTokenRefusals(t *testing.T) {
	f := newIAMFixture(t)
	ctx := ctxT(t)
	now := f.clock.Now()
	forger, err := kubetoken.NewIssuer(testIssuerURL) // same URL, another key
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := kubetoken.NewIssuer("https://oidc.elsewhere.test/id/OTHER")
	if err != nil {
		t.Fatal(err)
	}
	mint := f.minter(t, "shop", "app", kubetoken.AudienceSTS)
	cases := []struct {
		name, role, token, code string
		status                  int
		message                 string
	}{
		{"expired", appRoleARN, mint(f.issuer, kubetoken.Claims{IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Second)}), ErrExpiredToken, 400, "Token expired"},
		{"expiring at this second", appRoleARN, mint(f.issuer, kubetoken.Claims{IssuedAt: now.Add(-time.Hour), Expiry: now}), ErrExpiredToken, 400, "Token expired"},
		{"not yet valid", appRoleARN, mint(f.issuer, kubetoken.Claims{NotBefore: now.Add(time.Minute)}), ErrSTSInvalidIdentityToken, 400, "not valid yet"},
		{"wrong audience", appRoleARN, mint(f.issuer, kubetoken.Claims{Audience: kubetoken.AudiencePodIdentity}), ErrSTSInvalidIdentityToken, 400, "Incorrect token audience"},
		{"wrong issuer key", appRoleARN, mint(forger, kubetoken.Claims{}), ErrSTSInvalidIdentityToken, 400, "signature"},
		{"untrusted issuer", appRoleARN, mint(stranger, kubetoken.Claims{}), ErrSTSInvalidIdentityToken, 400, "No OpenIDConnect provider found in your account for https://oidc.elsewhere.test/id/OTHER"},
		{"not a JWT", appRoleARN, "not.a.jwt", ErrSTSInvalidIdentityToken, 400, "not a valid JWT"},
		{"subject not trusted", appRoleARN, mint(f.issuer, kubetoken.Claims{Namespace: "shop", ServiceAccount: "web"}), ErrSTSAccessDenied, 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"namespace not trusted", appRoleARN, mint(f.issuer, kubetoken.Claims{Namespace: "other", ServiceAccount: "app"}), ErrSTSAccessDenied, 403, "Not authorized"},
		{"role without web identity trust", webRoleARN, mint(f.issuer, kubetoken.Claims{}), ErrSTSAccessDenied, 403, "Not authorized"},
		{"unknown role", "arn:aws:iam::123456789012:role/nobody", mint(f.issuer, kubetoken.Claims{}), ErrSTSAccessDenied, 403, "Not authorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := f.stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
				RoleArn: aws.String(tc.role), RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(tc.token),
			})
			if err == nil {
				t.Fatalf("accepted: credentials for %s", aws.ToString(out.AssumedRoleUser.Arn))
			}
			ae := wantCode(t, err, tc.code)
			if httpStatus(t, err) != tc.status || !strings.Contains(ae.ErrorMessage(), tc.message) {
				t.Fatalf("status %d (want %d), message %q (want it to contain %q)", httpStatus(t, err), tc.status, ae.ErrorMessage(), tc.message)
			}
		})
	}
	// The same requests through the SDK's provider fail to give credentials.
	_, err = f.irsaProvider(appRoleARN, cases[0].token).Retrieve(ctx)
	wantCode(t, err, ErrExpiredToken)

	// Parameters are validated as the model says.
	good := mint(f.issuer, kubetoken.Claims{})
	for _, in := range []*sts.AssumeRoleWithWebIdentityInput{
		{RoleArn: aws.String(appRoleARN), RoleSessionName: aws.String("s"), WebIdentityToken: aws.String(good)},
		{RoleArn: aws.String(appRoleARN), RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(good), DurationSeconds: aws.Int32(899)},
		{RoleArn: aws.String(appRoleARN), RoleSessionName: aws.String("s1"), WebIdentityToken: aws.String(good), DurationSeconds: aws.Int32(3601)},
	} {
		_, err := f.stsClient().AssumeRoleWithWebIdentity(ctx, in)
		wantCode(t, err, ErrSTSValidation)
	}
	if n := f.emu.Calls(OpAssumeRoleWithWebIdentity); n != len(cases)+4 {
		t.Fatalf("%d AssumeRoleWithWebIdentity calls counted, want %d", n, len(cases)+4)
	}
	f.emu.mu.Lock()
	sessions := len(f.emu.sessions)
	f.emu.mu.Unlock()
	if sessions != 0 {
		t.Fatalf("%d sessions were made by refused requests", sessions)
	}
}

// TestIAMSessionsExpireOnTheEmulatorClock takes credentials from STS and
// from the Pod Identity endpoint, uses them as static credentials (so that
// the SDK does not refresh them), and moves the emulator's clock past
// their expiration.
func TestIAMSessionsExpireOnTheEmulatorClock(t *testing.T) {
	f := newIAMFixture(t)
	ctx := ctxT(t)
	out, err := f.stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(appRoleARN), RoleSessionName: aws.String("clock"),
		WebIdentityToken: aws.String(f.token(t, "shop", "app", kubetoken.AudienceSTS)), DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || len(aws.ToString(c.AccessKeyId)) != 20 || aws.ToString(c.SessionToken) == "" {
		t.Fatalf("credentials: key %q", aws.ToString(c.AccessKeyId))
	}
	if !c.Expiration.Equal(f.now.Add(900 * time.Second)) {
		t.Fatalf("Expiration %v, want the emulator's now + 900 s = %v", c.Expiration, f.now.Add(900*time.Second))
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/app/clock" ||
		!regexp.MustCompile(`^AROA[A-Z2-7]{16}:clock$`).MatchString(aws.ToString(out.AssumedRoleUser.AssumedRoleId)) ||
		aws.ToString(out.SubjectFromWebIdentityToken) != "system:serviceaccount:shop:app" || aws.ToString(out.Audience) != kubetoken.AudienceSTS ||
		aws.ToString(out.Provider) != "arn:aws:iam::123456789012:oidc-provider/oidc.emulator.test/id/CLUSTER" {
		t.Fatalf("answer: user %+v, subject %q, audience %q, provider %q", out.AssumedRoleUser, aws.ToString(out.SubjectFromWebIdentityToken), aws.ToString(out.Audience), aws.ToString(out.Provider))
	}
	session := f.staticClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))

	podCreds, err := f.podIdentityProvider(f.token(t, "shop", "web", kubetoken.AudiencePodIdentity)).Retrieve(ctx)
	if err != nil {
		t.Fatalf("Pod Identity credentials: %v", err)
	}
	if !podCreds.CanExpire || !podCreds.Expires.Equal(f.now.Add(PodIdentityCredentialDuration)) || podCreds.AccountID != "123456789012" {
		t.Fatalf("Pod Identity credentials: expire %v (can %v), account %q", podCreds.Expires, podCreds.CanExpire, podCreds.AccountID)
	}
	pod := f.staticClient(podCreds.AccessKeyID, podCreds.SecretAccessKey, podCreds.SessionToken)

	f.clock.Advance(899 * time.Second)
	if _, err := getValue(ctx, session, "app/db"); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	_, err = getValue(ctx, session, "app/db")
	if ae := wantCode(t, err, ErrExpiredToken); ae.ErrorMessage() != "The security token included in the request is expired" {
		t.Fatalf("message %q", ae.ErrorMessage())
	}
	if _, err := getValue(ctx, pod, "web/token"); err != nil {
		t.Fatalf("Pod Identity credentials before their expiry: %v", err)
	}
	f.clock.Set(f.now.Add(PodIdentityCredentialDuration))
	_, err = getValue(ctx, pod, "web/token")
	wantCode(t, err, ErrExpiredToken)

	// A role may allow longer sessions, up to its maximum.
	wout, err := f.stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(appRoleARN), RoleSessionName: aws.String("again"),
		WebIdentityToken: aws.String(f.token(t, "shop", "app", kubetoken.AudienceSTS)),
	})
	if err != nil || !wout.Credentials.Expiration.Equal(f.clock.Now().Add(DefaultSessionDuration)) {
		t.Fatalf("default duration: %v, %v", wout, err)
	}
}

// TestIAMSignaturesAreVerified: with an IAM model, a request is served
// only when its signature verifies with its key's secret.
func TestIAMSignaturesAreVerified(t *testing.T) {
	f := newIAMFixture(t)
	ctx := ctxT(t)
	creds, err := f.irsaProvider(appRoleARN, f.token(t, "shop", "app", kubetoken.AudienceSTS)).Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := getValue(ctx, f.staticClient(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken), "app/db"); err != nil {
		t.Fatalf("the session's own credentials: %v", err)
	}
	// Another token: its last character changed (to A, or to B where it
	// was A already).
	otherToken := creds.SessionToken[:len(creds.SessionToken)-1] + "A"
	if otherToken == creds.SessionToken {
		otherToken = creds.SessionToken[:len(creds.SessionToken)-1] + "B"
	}
	forgedSecret := strings.ToUpper(creds.SecretAccessKey[:1]) + strings.ToLower(creds.SecretAccessKey[1:])
	if forgedSecret == creds.SecretAccessKey {
		forgedSecret = creds.SecretAccessKey + "x"
	}
	cases := []struct {
		name                  string
		keyID, secret, token  string
		code, messageContains string
	}{
		{"session key, wrong secret", creds.AccessKeyID, forgedSecret, creds.SessionToken, ErrInvalidSignature, "The request signature we calculated does not match the signature you provided."},
		{"static key, wrong secret", nodeKeyID, "not-the-node-secret", "", ErrInvalidSignature, "does not match"},
		{"admin key, node's secret", adminKeyID, nodeKeySecret, "", ErrInvalidSignature, "does not match"},
		{"unknown key", "AKIAUNKNOWN0000000", "whatever", "", ErrUnrecognizedClient, "The security token included in the request is invalid."},
		{"session key without its token", creds.AccessKeyID, creds.SecretAccessKey, "", ErrUnrecognizedClient, "invalid"},
		{"session key with another token", creds.AccessKeyID, creds.SecretAccessKey, otherToken, ErrUnrecognizedClient, "invalid"},
		{"static key with a token", nodeKeyID, nodeKeySecret, "some-token", ErrUnrecognizedClient, "invalid"},
	}
	for _, tc := range cases {
		_, err := getValue(ctx, f.staticClient(tc.keyID, tc.secret, tc.token), "app/db")
		ae := wantCode(t, err, tc.code)
		if !strings.Contains(ae.ErrorMessage(), tc.messageContains) {
			t.Fatalf("%s: message %q", tc.name, ae.ErrorMessage())
		}
	}

	// The body is part of the signature: a request changed after signing
	// is refused.
	req := signedRaw(t, f.srv.URL(), nodeKeyID, nodeKeySecret, "", "secretsmanager", `{"SecretId":"app/db"}`)
	withBody(req, `{"SecretId":"web/to"}`) // same length, other secret
	assertRawError(t, req, ErrInvalidSignature)
	// A signature for another service is refused.
	assertRawError(t, signedRaw(t, f.srv.URL(), nodeKeyID, nodeKeySecret, "", "kms", `{"SecretId":"app/db"}`), ErrInvalidSignature)
	// The same request signed right is authenticated (and then denied:
	// the node key may read nothing).
	assertRawError(t, signedRaw(t, f.srv.URL(), nodeKeyID, nodeKeySecret, "", "secretsmanager", `{"SecretId":"app/db"}`), ErrAccessDenied)
	// Unsigned requests are refused as before.
	unsigned, _ := http.NewRequest(http.MethodPost, f.srv.URL()+"/", strings.NewReader(`{"SecretId":"app/db"}`))
	unsigned.Header.Set("X-Amz-Target", targetPrefix+OpGetSecretValue)
	unsigned.Header.Set("Content-Type", "application/x-amz-json-1.1")
	assertRawError(t, unsigned, ErrMissingAuthenticationToken)
}

// TestNoIAMAcceptsAnyKeyAsBefore: without an IAM model nothing changes:
// any key reads any secret, the signature is not checked; calls are
// counted by access key id; STS and the Pod Identity endpoint refuse.
func TestNoIAMAcceptsAnyKeyAsBefore(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "any", SecretString: str("v")})
	for _, key := range []string{"AKIDONE", "ASIAWHATEVER"} {
		c := sdkClient(f.srv.URL(), func(o *secretsmanager.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(key, "any-secret", "any-token")
		})
		if v, err := getValue(ctx, c, "any"); err != nil || v != "v" {
			t.Fatalf("key %s: %q, %v", key, v, err)
		}
	}
	assertRawError(t, signedRaw(t, f.srv.URL(), "AKIDRAW", "secret", "", "kms", `{"SecretId":"any"}`), "")
	if f.emu.IAMEnabled() {
		t.Fatal("IAMEnabled without a model")
	}
	want := map[string]map[string]int{"AKIDONE": {OpGetSecretValue: 1}, "ASIAWHATEVER": {OpGetSecretValue: 1}, "AKIDRAW": {OpGetSecretValue: 1}}
	if got := f.emu.CallsByIdentity(); !maps.EqualFunc(got, want, maps.Equal) {
		t.Fatalf("CallsByIdentity = %v, want %v", got, want)
	}
	iss, err := kubetoken.NewIssuer(testIssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Token(kubetoken.Claims{Namespace: "shop", ServiceAccount: "app", Audience: kubetoken.AudienceSTS, IssuedAt: f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	fx := &iamFixture{fixture: f, issuer: iss, now: f.clock.Now()}
	_, err = fx.irsaProvider(appRoleARN, tok).Retrieve(ctx)
	if ae := wantCode(t, err, ErrSTSInvalidIdentityToken); !strings.Contains(ae.ErrorMessage(), "no IAM model") {
		t.Fatalf("STS without IAM: %v", err)
	}
	_, err = fx.podIdentityProvider(tok).Retrieve(ctx)
	wantCode(t, err, ErrPodIdentityInvalidToken)
	f.emu.ResetCalls()
	if len(f.emu.CallsByIdentity()) != 0 {
		t.Fatal("ResetCalls left counts by identity")
	}
}

// TestIAMCredentialEndpointFaults: STS and the Pod Identity endpoint are
// faulted when named, in their own error formats, and not by faults on
// every (Secrets Manager) operation.
func TestIAMCredentialEndpointFaults(t *testing.T) {
	f := newIAMFixture(t)
	ctx := ctxT(t)
	stsToken := f.token(t, "shop", "app", kubetoken.AudienceSTS)
	podToken := f.token(t, "shop", "web", kubetoken.AudiencePodIdentity)
	f.emu.InjectFault(AllOperations, Fault{ErrorType: ErrInternalServiceError})
	f.emu.InjectFault(OpAssumeRoleWithWebIdentity, Fault{ErrorType: "Throttling", Message: "Rate exceeded", Times: 1})
	f.emu.InjectFault(OpPodIdentityCredentials, Fault{ErrorType: "InternalServerException", Status: 500, Times: 1})

	_, err := f.irsaProvider(appRoleARN, stsToken).Retrieve(ctx)
	if ae := wantCode(t, err, "Throttling"); ae.ErrorMessage() != "Rate exceeded" || httpStatus(t, err) != 400 {
		t.Fatalf("STS fault: %v", err)
	}
	_, err = f.podIdentityProvider(podToken).Retrieve(ctx)
	if wantCode(t, err, "InternalServerException"); httpStatus(t, err) != 500 {
		t.Fatalf("Pod Identity fault: %v", err)
	}
	if _, err := f.irsaProvider(appRoleARN, stsToken).Retrieve(ctx); err != nil {
		t.Fatalf("STS after its one fault, with a fault on every Secrets Manager operation: %v", err)
	}
	if _, err := f.podIdentityProvider(podToken).Retrieve(ctx); err != nil {
		t.Fatalf("Pod Identity after its one fault: %v", err)
	}
	_, err = getValue(ctx, f.staticClient(adminKeyID, adminKeySecret, ""), "app/db")
	wantCode(t, err, ErrInternalServiceError)

	cc := NewControlClient(f.srv.URL(), nil)
	if err := cc.InjectFault(ctx, OpPodIdentityCredentials, Fault{Drop: true, Times: 1}); err != nil {
		t.Fatalf("a Pod Identity fault over HTTP: %v", err)
	}
	if _, err := f.podIdentityProvider(podToken).Retrieve(ctx); err == nil {
		t.Fatal("the dropping fault did not apply")
	}
}

// TestSTSQueryProtocol reads STS's answers without the SDK: an XML
// ErrorResponse in STS's namespace with Type, Code, Message and RequestId,
// for an action the emulator does not implement and for a missing
// parameter.
func TestSTSQueryProtocol(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ body, code string }{
		{"Action=GetCallerIdentity&Version=2011-06-15", ErrSTSInvalidAction},
		{"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp", ErrSTSMissingParameter},
	} {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL()+"/", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		status, data := testutil.Do(t, req)
		var out struct {
			XMLName   xml.Name
			Error     struct{ Type, Code, Message string }
			RequestID string `xml:"RequestId"`
		}
		if err := xml.Unmarshal([]byte(data), &out); err != nil {
			t.Fatalf("%s: not XML: %v\n%s", tc.body, err, data)
		}
		if status != 400 || out.XMLName.Space != "https://sts.amazonaws.com/doc/2011-06-15/" || out.XMLName.Local != "ErrorResponse" ||
			out.Error.Type != "Sender" || out.Error.Code != tc.code || out.Error.Message == "" || out.RequestID == "" {
			t.Fatalf("%s: %d\n%s", tc.body, status, data)
		}
	}
}
