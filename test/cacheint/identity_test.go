package cacheint

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/test/emulator"
)

const assumeRoleAnswer = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAASSUMEDROLE</AccessKeyId>
      <SecretAccessKey>assumed-secret</SecretAccessKey>
      <SessionToken>assumed-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/secretsfs/session</Arn>
      <AssumedRoleId>AROATEST:session</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>4f1c1f3e-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</AssumeRoleResponse>`

// TestRoleARNAssumesTheRoleThroughSTS checks that an Identity's RoleARN
// (the daemon's --role-arn) makes the client call STS AssumeRole and sign
// its Secrets Manager calls with the role's credentials.
func TestRoleARNAssumesTheRoleThroughSTS(t *testing.T) {
	var mu sync.Mutex
	var stsForms []string
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		stsForms = append(stsForms, r.Form.Encode())
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(assumeRoleAnswer))
	}))
	defer sts.Close()

	emu := emulator.New()
	s := "value"
	if _, err := emu.CreateSecret(emulator.Secret{Name: "role/secret", SecretString: &s}); err != nil {
		t.Fatal(err)
	}
	var auths []string
	sm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization")+" token="+r.Header.Get("X-Amz-Security-Token"))
		mu.Unlock()
		emu.ServeHTTP(w, r)
	}))
	defer sm.Close()

	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "AKIDSTARTING",
		"AWS_SECRET_ACCESS_KEY": "starting-secret", "AWS_REGION": "us-east-1",
		"AWS_ENDPOINT_URL_STS": sts.URL,
	} {
		t.Setenv(k, v)
	}
	id := cache.Identity{RoleARN: "arn:aws:iam::123456789012:role/secretsfs", EndpointURL: sm.URL}
	client, err := cache.NewClient(context.Background(), id, "test")
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("role/secret")})
	if err != nil || aws.ToString(out.SecretString) != "value" {
		t.Fatalf("GetSecretValue = %v, %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stsForms) != 1 || !strings.Contains(stsForms[0], "Action=AssumeRole") ||
		!strings.Contains(stsForms[0], "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fsecretsfs") ||
		!strings.Contains(stsForms[0], "RoleSessionName=secretsfs") {
		t.Fatalf("STS requests: %v", stsForms)
	}
	if len(auths) != 1 || !strings.Contains(auths[0], "Credential=ASIAASSUMEDROLE/") || !strings.Contains(auths[0], "token=assumed-token") {
		t.Fatalf("Secrets Manager request not signed with the role's credentials: %v", auths)
	}
}
