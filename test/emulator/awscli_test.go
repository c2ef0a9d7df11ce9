package emulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// requireAWSCLIEnv, when set (CI sets it), turns a missing AWS CLI v2 into
// a failure instead of a skip.
const requireAWSCLIEnv = "SECRETSFS_TEST_REQUIRE_AWSCLI"

// awsCLI runs the official AWS CLI v2 against an endpoint, in an
// environment of its own: fake static credentials, config and credentials
// files in a temporary directory, no pager, no instance metadata.
type awsCLI struct {
	t        *testing.T
	bin      string
	endpoint string
	env      []string
}

// findAWSCLIv2 returns the path of an AWS CLI v2: /usr/bin/aws (the Debian
// package) when it is v2, else an "aws" on PATH that is v2. CLI v1 does not
// count. Without one the test skips, or fails when requireAWSCLIEnv is set.
func findAWSCLIv2(t *testing.T, env []string) string {
	t.Helper()
	var candidates []string
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		candidates = append(candidates, "/usr/bin/aws")
	}
	if p, err := exec.LookPath("aws"); err == nil {
		candidates = append(candidates, p)
	}
	var seen []string
	for _, c := range candidates {
		cmd := exec.Command(c, "--version")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		v := strings.TrimSpace(string(out))
		if err == nil && strings.HasPrefix(v, "aws-cli/2.") {
			return c
		}
		seen = append(seen, c+": "+v)
	}
	msg := "no AWS CLI v2 found (install the Debian package awscli)"
	if len(seen) > 0 {
		msg += "; found only: " + strings.Join(seen, "; ")
	}
	if os.Getenv(requireAWSCLIEnv) != "" {
		t.Fatalf("%s, and %s is set", msg, requireAWSCLIEnv)
	}
	t.Skip(msg)
	return ""
}

func newAWSCLI(t *testing.T, endpoint string) *awsCLI {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"AWS_CONFIG_FILE=" + config,
		"AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_ACCESS_KEY_ID=AKIDEMULATORCLI",
		"AWS_SECRET_ACCESS_KEY=emulator-cli-secret",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_CLI_AUTO_PROMPT=off",
		"AWS_MAX_ATTEMPTS=1",
	}
	return &awsCLI{t: t, bin: findAWSCLIv2(t, env), endpoint: endpoint, env: env}
}

// with returns a copy of c that reports to t.
func (c *awsCLI) with(t *testing.T) *awsCLI {
	cp := *c
	cp.t = t
	return &cp
}

// withCredentials returns a copy of c that signs with the given key.
func (c *awsCLI) withCredentials(keyID, secret, token string) *awsCLI {
	cp := *c
	cp.env = slices.DeleteFunc(slices.Clone(c.env), func(kv string) bool {
		return strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") || strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") || strings.HasPrefix(kv, "AWS_SESSION_TOKEN=")
	})
	cp.env = append(cp.env, "AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret)
	if token != "" {
		cp.env = append(cp.env, "AWS_SESSION_TOKEN="+token)
	}
	return &cp
}

// run runs "aws secretsmanager ARGS" and returns its stdout, or an error
// holding its stderr.
func (c *awsCLI) run(args ...string) (string, error) {
	c.t.Helper()
	return c.runService("secretsmanager", args...)
}

// runService runs "aws SERVICE ARGS" and returns its stdout, or an error
// holding its stderr.
func (c *awsCLI) runService(service string, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"--endpoint-url", c.endpoint, "--output", "json", service}, args...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// json runs the CLI and decodes its JSON output into v.
func (c *awsCLI) json(v any, args ...string) {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("aws secretsmanager %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("aws secretsmanager %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs the CLI, expecting it to fail with the given error type.
func (c *awsCLI) fails(code string, args ...string) {
	c.t.Helper()
	_, err := c.run(args...)
	if err == nil || !strings.Contains(err.Error(), "("+code+")") {
		c.t.Fatalf("aws secretsmanager %s: want %s, got %v", strings.Join(args, " "), code, err)
	}
}

type cliSecret struct {
	ARN, Name, VersionId, SecretString, SecretBinary string
	VersionStages                                    []string
	DeletionDate, DeletedDate, NextRotationDate      string
	VersionIdsToStages                               map[string][]string
	Tags                                             []Tag
	NextToken                                        string
	SecretList                                       []cliSecret
	Versions                                         []cliSecret
}

func sortedStages(m map[string][]string) map[string][]string {
	for _, v := range m {
		slices.Sort(v)
	}
	return m
}

// TestAWSCLIConformance drives the emulator with the official AWS CLI v2,
// an independent client with its own serializer, paginator and error
// handling.
func TestAWSCLIConformance(t *testing.T) {
	f := newFixture(t)
	cli := newAWSCLI(t, f.srv.URL())
	f.clock.Set(time.Now().Truncate(time.Second))

	t.Run("create put get describe update-version-stage", func(t *testing.T) {
		t.Parallel()
		cli := cli.with(t)
		var created, put2, put3 cliSecret
		cli.json(&created, "create-secret", "--name", "cli/db", "--description", "cli db",
			"--secret-string", `{"user":"app","password":"first"}`, "--tags", "Key=env,Value=prod")
		if created.Name != "cli/db" || !strings.HasPrefix(created.ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:cli/db-") || created.VersionId == "" {
			t.Fatalf("create-secret: %+v", created)
		}
		cli.json(&put2, "put-secret-value", "--secret-id", "cli/db", "--secret-string", "second")
		if !slices.Equal(put2.VersionStages, []string{StageCurrent}) {
			t.Fatalf("put-secret-value: %+v", put2)
		}
		var got cliSecret
		cli.json(&got, "get-secret-value", "--secret-id", "cli/db", "--version-stage", StagePrevious)
		if got.SecretString != `{"user":"app","password":"first"}` || got.VersionId != created.VersionId {
			t.Fatalf("get by stage AWSPREVIOUS: %+v", got)
		}
		cli.json(&got, "get-secret-value", "--secret-id", created.ARN, "--version-id", put2.VersionId)
		if got.SecretString != "second" {
			t.Fatalf("get by version id: %+v", got)
		}
		cli.json(&put3, "put-secret-value", "--secret-id", "cli/db", "--secret-string", "third", "--version-stages", StagePending)
		cli.json(&struct{}{}, "update-secret-version-stage", "--secret-id", "cli/db", "--version-stage", StageCurrent,
			"--remove-from-version-id", put2.VersionId, "--move-to-version-id", put3.VersionId)
		var d cliSecret
		cli.json(&d, "describe-secret", "--secret-id", "cli/db")
		want := map[string][]string{put2.VersionId: {StagePrevious}, put3.VersionId: {StageCurrent, StagePending}}
		if !mapsEqual(sortedStages(d.VersionIdsToStages), want) || len(d.Tags) != 1 || d.Tags[0] != (Tag{Key: "env", Value: "prod"}) {
			t.Fatalf("describe-secret: stages %v tags %v; want %v", d.VersionIdsToStages, d.Tags, want)
		}
		var versions cliSecret
		cli.json(&versions, "list-secret-version-ids", "--secret-id", "cli/db", "--include-deprecated")
		if len(versions.Versions) != 3 {
			t.Fatalf("list-secret-version-ids: %+v", versions.Versions)
		}
		cli.fails(ErrInvalidParameter, "update-secret-version-stage", "--secret-id", "cli/db", "--version-stage", StageCurrent, "--move-to-version-id", created.VersionId)
		cli.fails(ErrResourceNotFound, "get-secret-value", "--secret-id", "cli/nothing")
	})

	t.Run("binary via fileb", func(t *testing.T) {
		t.Parallel()
		cli := cli.with(t)
		value := []byte{0, 1, 2, 0xfe, 0xff, '\n', 'x'}
		path := filepath.Join(t.TempDir(), "key.bin")
		if err := os.WriteFile(path, value, 0o600); err != nil {
			t.Fatal(err)
		}
		cli.json(&cliSecret{}, "create-secret", "--name", "cli/bin", "--secret-binary", "fileb://"+path)
		var got cliSecret
		cli.json(&got, "get-secret-value", "--secret-id", "cli/bin")
		raw, err := base64.StdEncoding.DecodeString(got.SecretBinary)
		if err != nil || !bytes.Equal(raw, value) || got.SecretString != "" {
			t.Fatalf("binary secret: %q (%v)", got.SecretBinary, err)
		}
		// And the CLI's bytes reached the emulator unchanged.
		direct, aerr := f.emu.getSecretValue(&getSecretValueRequest{SecretId: str("cli/bin")})
		if aerr != nil || !bytes.Equal(direct.SecretBinary, value) {
			t.Fatalf("stored binary: %v", aerr)
		}
	})

	t.Run("list with filters and pagination", func(t *testing.T) {
		t.Parallel()
		cli := cli.with(t)
		for _, n := range []string{"a", "b", "c", "d", "e"} {
			s := Secret{Name: "cli/list/" + n, SecretString: str(n)}
			if n == "b" || n == "d" {
				s.Tags = []Tag{{Key: "team", Value: "blue"}}
			}
			mustCreate(t, f.emu, s)
		}
		names := func(s cliSecret) []string {
			var out []string
			for _, e := range s.SecretList {
				out = append(out, e.Name)
			}
			return out
		}
		before := f.emu.Calls(OpListSecrets)
		var all cliSecret
		cli.json(&all, "list-secrets", "--filters", "Key=name,Values=cli/list/", "--page-size", "2")
		if got := names(all); !slices.Equal(got, []string{"cli/list/a", "cli/list/b", "cli/list/c", "cli/list/d", "cli/list/e"}) {
			t.Fatalf("list-secrets --page-size 2: %v", got)
		}
		if n := f.emu.Calls(OpListSecrets) - before; n != 3 {
			t.Fatalf("the CLI made %d ListSecrets calls for 5 secrets in pages of 2, want 3", n)
		}
		var first, rest cliSecret
		cli.json(&first, "list-secrets", "--filters", "Key=name,Values=cli/list/", "--max-items", "2", "--page-size", "1")
		if got := names(first); !slices.Equal(got, []string{"cli/list/a", "cli/list/b"}) || first.NextToken == "" {
			t.Fatalf("list-secrets --max-items 2: %v, token %q", got, first.NextToken)
		}
		cli.json(&rest, "list-secrets", "--filters", "Key=name,Values=cli/list/", "--page-size", "1", "--starting-token", first.NextToken)
		if got := names(rest); !slices.Equal(got, []string{"cli/list/c", "cli/list/d", "cli/list/e"}) {
			t.Fatalf("list-secrets --starting-token: %v", got)
		}
		var tagged cliSecret
		cli.json(&tagged, "list-secrets", "--filters", "Key=tag-key,Values=team", "Key=tag-value,Values=blue")
		if got := names(tagged); !slices.Equal(got, []string{"cli/list/b", "cli/list/d"}) {
			t.Fatalf("list-secrets by tag: %v", got)
		}
	})

	t.Run("batch-get", func(t *testing.T) {
		t.Parallel()
		cli := cli.with(t)
		if _, err := cli.run("batch-get-secret-value", "help"); err != nil {
			t.Skipf("this AWS CLI has no batch-get-secret-value (it came to the CLI in late 2023); BatchGetSecretValue is covered through the SDK by TestBatchGetSecretValue")
		}
		var out struct {
			SecretValues []cliSecret
			Errors       []struct{ SecretId, ErrorCode string }
		}
		cli.json(&out, "batch-get-secret-value", "--secret-id-list", "cli/list/a", "cli/list/b", "cli/missing")
		if len(out.SecretValues) != 2 || len(out.Errors) != 1 || out.Errors[0].ErrorCode != ErrResourceNotFound {
			t.Fatalf("batch-get-secret-value: %+v", out)
		}
	})

	t.Run("rotate", func(t *testing.T) {
		t.Parallel()
		cli := cli.with(t)
		mustCreate(t, f.emu, Secret{Name: "cli/rotating", SecretString: str(`{"username":"svc","password":"old"}`)})
		var r cliSecret
		cli.json(&r, "rotate-secret", "--secret-id", "cli/rotating", "--rotation-rules", "AutomaticallyAfterDays=30")
		var cur, prev cliSecret
		cli.json(&cur, "get-secret-value", "--secret-id", "cli/rotating")
		cli.json(&prev, "get-secret-value", "--secret-id", "cli/rotating", "--version-stage", StagePrevious)
		var v map[string]string
		if err := json.Unmarshal([]byte(cur.SecretString), &v); err != nil || cur.VersionId != r.VersionId || v["username"] != "svc" || v["password"] == "old" {
			t.Fatalf("after rotate-secret: version %s (rotation made %s), keys kept: %v", cur.VersionId, r.VersionId, v["username"] == "svc")
		}
		if prev.SecretString != `{"username":"svc","password":"old"}` {
			t.Fatal("AWSPREVIOUS is not the old value")
		}
		var d cliSecret
		cli.json(&d, "describe-secret", "--secret-id", "cli/rotating")
		if d.NextRotationDate == "" {
			t.Fatalf("describe-secret after rotation has no NextRotationDate")
		}
	})

	t.Run("delete and restore", func(t *testing.T) {
		t.Parallel()
		cli := cli.with(t)
		mustCreate(t, f.emu, Secret{Name: "cli/doomed", SecretString: str("v")})
		var del cliSecret
		cli.json(&del, "delete-secret", "--secret-id", "cli/doomed", "--recovery-window-in-days", "7")
		if del.DeletionDate == "" {
			t.Fatalf("delete-secret: %+v", del)
		}
		cli.fails(ErrInvalidRequest, "get-secret-value", "--secret-id", "cli/doomed")
		var d cliSecret
		cli.json(&d, "describe-secret", "--secret-id", "cli/doomed")
		if d.DeletedDate == "" {
			t.Fatal("describe-secret of a deleted secret has no DeletedDate")
		}
		cli.json(&cliSecret{}, "restore-secret", "--secret-id", "cli/doomed")
		var got cliSecret
		cli.json(&got, "get-secret-value", "--secret-id", "cli/doomed")
		if got.SecretString != "v" {
			t.Fatalf("after restore-secret: %+v", got)
		}
		cli.json(&cliSecret{}, "delete-secret", "--secret-id", "cli/doomed", "--force-delete-without-recovery")
		cli.fails(ErrResourceNotFound, "describe-secret", "--secret-id", "cli/doomed")
	})
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestAWSCLIWebIdentity proves the STS protocol and the signature checks
// with an independent client: the AWS CLI assumes a role with a
// service-account token, then reads with the temporary credentials what
// the role's policy allows, and is refused the rest; a forged secret key
// is refused too.
func TestAWSCLIWebIdentity(t *testing.T) {
	f := newIAMFixture(t)
	cli := newAWSCLI(t, f.srv.URL())
	out, err := cli.runService("sts", "assume-role-with-web-identity", "--role-arn", appRoleARN,
		"--role-session-name", "cli", "--duration-seconds", "900",
		"--web-identity-token", f.token(t, "shop", "app", kubetoken.AudienceSTS))
	if err != nil {
		t.Fatalf("aws sts assume-role-with-web-identity: %v", err)
	}
	var assumed struct {
		Credentials struct {
			AccessKeyId, SecretAccessKey, SessionToken, Expiration string
		}
		AssumedRoleUser             struct{ Arn, AssumedRoleId string }
		SubjectFromWebIdentityToken string
	}
	if err := json.Unmarshal([]byte(out), &assumed); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	c := assumed.Credentials
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil || !exp.Equal(f.now.Add(900*time.Second)) || !strings.HasPrefix(c.AccessKeyId, "ASIA") ||
		assumed.AssumedRoleUser.Arn != "arn:aws:sts::123456789012:assumed-role/app/cli" || assumed.SubjectFromWebIdentityToken != "system:serviceaccount:shop:app" {
		t.Fatalf("assumed: key %q, expiration %q (%v), user %+v, subject %q", c.AccessKeyId, c.Expiration, err, assumed.AssumedRoleUser, assumed.SubjectFromWebIdentityToken)
	}

	session := cli.withCredentials(c.AccessKeyId, c.SecretAccessKey, c.SessionToken)
	var got cliSecret
	session.json(&got, "get-secret-value", "--secret-id", "app/db")
	if got.SecretString != "value of app/db" {
		t.Fatalf("get-secret-value app/db: %+v", got)
	}
	session.fails(ErrAccessDenied, "get-secret-value", "--secret-id", "web/token")
	session.fails(ErrAccessDenied, "list-secrets")
	cli.withCredentials(c.AccessKeyId, c.SecretAccessKey+"x", c.SessionToken).fails(ErrInvalidSignature, "get-secret-value", "--secret-id", "app/db")
	cli.withCredentials(nodeKeyID, nodeKeySecret, "").fails(ErrAccessDenied, "get-secret-value", "--secret-id", "app/db")
	var created cliSecret
	cli.withCredentials(adminKeyID, adminKeySecret, "").json(&created, "create-secret", "--name", "app/by-cli", "--secret-string", "v")
	if created.Name != "app/by-cli" {
		t.Fatalf("create-secret with the admin key: %+v", created)
	}

	if _, err := cli.runService("sts", "assume-role-with-web-identity", "--role-arn", appRoleARN, "--role-session-name", "cli",
		"--web-identity-token", f.token(t, "shop", "web", kubetoken.AudienceSTS)); err == nil || !strings.Contains(err.Error(), "(AccessDenied)") {
		t.Fatalf("an untrusted subject: %v", err)
	}
	f.clock.Advance(900 * time.Second)
	session.fails(ErrExpiredToken, "get-secret-value", "--secret-id", "app/db")
	// The refused signature and the expired session are not counted: their caller is unknown.
	if by := f.emu.CallsByIdentity()[appRoleARN]; by[OpAssumeRoleWithWebIdentity] != 2 || by[OpGetSecretValue] != 2 || by[OpListSecrets] != 1 {
		t.Fatalf("calls of the app role: %v", by)
	}
}
