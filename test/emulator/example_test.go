package emulator_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/test/emulator"
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
