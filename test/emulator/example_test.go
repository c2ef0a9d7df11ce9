package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// Example serves an emulator on loopback, points the real SDK at it,
// injects a fault and counts the calls.
func Example() {
	e := emulator.New()
	srv, err := emulator.Start(e, "")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if _, err := e.CreateSecret(emulator.Secret{Name: "prod/db", SecretString: aws.String("v1")}); err != nil {
		panic(err)
	}
	client := secretsmanager.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test", ""),
	}, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL())
		o.Retryer = aws.NopRetryer{}
	})
	ctx := context.Background()

	e.InjectFault(emulator.OpGetSecretValue, emulator.Fault{ErrorType: emulator.ErrThrottling, Times: 1})
	_, err = client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
	var ae smithy.APIError
	if errors.As(err, &ae) {
		fmt.Println("first call:", ae.ErrorCode())
	}
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
	if err != nil {
		panic(err)
	}
	fmt.Println("second call:", aws.ToString(out.SecretString))
	fmt.Println("GetSecretValue calls:", e.Calls(emulator.OpGetSecretValue))
	// Output:
	// first call: ThrottlingException
	// second call: v1
	// GetSecretValue calls: 2
}

// Example_webIdentity gives a pod's service account a role (IRSA) that
// may read one secret, and reads it with the SDK's web identity provider
// and a token made by test/kubetoken; another secret is refused.
func Example_webIdentity() {
	clock := emulator.NewManualClock(time.Now())
	e := emulator.New(emulator.WithClock(clock))
	srv, err := emulator.Start(e, "")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	for _, name := range []string{"shop/db", "billing/db"} {
		if _, err := e.CreateSecret(emulator.Secret{Name: name, SecretString: aws.String("value of " + name)}); err != nil {
			panic(err)
		}
	}
	issuer, err := kubetoken.NewIssuer("https://oidc.example.test/cluster")
	if err != nil {
		panic(err)
	}
	err = e.SetIAM(emulator.IAM{
		Issuers: []emulator.Issuer{{URL: issuer.URL(), JWKS: issuer.JWKS()}},
		Roles: []emulator.Role{{
			ARN:         "arn:aws:iam::123456789012:role/shop",
			TrustIssuer: issuer.URL(), TrustSubjects: []string{kubetoken.Subject("shop", "app")},
			Policy: emulator.Policy{Secrets: []string{"shop/*"}},
		}},
	})
	if err != nil {
		panic(err)
	}
	token, err := issuer.Token(kubetoken.Claims{Namespace: "shop", ServiceAccount: "app", Audience: kubetoken.AudienceSTS, IssuedAt: clock.Now()})
	if err != nil {
		panic(err)
	}

	stsClient := sts.NewFromConfig(aws.Config{Region: "us-east-1"}, func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	creds := stscreds.NewWebIdentityRoleProvider(stsClient, "arn:aws:iam::123456789012:role/shop", tokenBytes(token))
	client := secretsmanager.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: aws.NewCredentialsCache(creds)},
		func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	ctx := context.Background()

	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("shop/db")})
	if err != nil {
		panic(err)
	}
	fmt.Println("shop/db:", aws.ToString(out.SecretString))
	_, err = client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("billing/db")})
	var ae smithy.APIError
	if errors.As(err, &ae) {
		fmt.Println("billing/db:", ae.ErrorCode())
	}
	fmt.Println("calls of the role:", e.CallsByIdentity()["arn:aws:iam::123456789012:role/shop"])
	// Output:
	// shop/db: value of shop/db
	// billing/db: AccessDeniedException
	// calls of the role: map[AssumeRoleWithWebIdentity:1 GetSecretValue:2]
}

// tokenBytes is a web identity token held in memory, for the SDK's
// stscreds.IdentityTokenRetriever.
type tokenBytes string

func (t tokenBytes) GetIdentityToken() ([]byte, error) { return []byte(t), nil }
