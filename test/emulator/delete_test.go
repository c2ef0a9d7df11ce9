package emulator

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestDeleteWithRecoveryWindowAndRestore(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	arn := mustCreate(t, f.emu, Secret{Name: "del", SecretString: str("v")})
	out, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("del"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	due := t0.Add(7 * 24 * time.Hour)
	if aws.ToString(out.ARN) != arn || !aws.ToTime(out.DeletionDate).Equal(due) {
		t.Fatalf("DeleteSecret answered %s, %v; want %s, %v", aws.ToString(out.ARN), out.DeletionDate, arn, due)
	}
	d, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("del")})
	if err != nil || !aws.ToTime(d.DeletedDate).Equal(due) {
		t.Fatalf("a secret scheduled for deletion still describes, with DeletedDate: %+v, %v", d, err)
	}

	var ir *types.InvalidRequestException
	reads := map[string]func() error{
		"GetSecretValue": func() error {
			_, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("del")})
			return err
		},
		"PutSecretValue": func() error {
			_, err := f.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("del"), SecretString: aws.String("w")})
			return err
		},
		"UpdateSecret": func() error {
			_, err := f.client.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("del"), Description: aws.String("d")})
			return err
		},
		"RotateSecret": func() error {
			_, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("del")})
			return err
		},
		"ListSecretVersionIds": func() error {
			_, err := f.client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("del")})
			return err
		},
		"TagResource": func() error {
			_, err := f.client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("del"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"DeleteSecret again": func() error {
			_, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("del")})
			return err
		},
		"CreateSecret of the name": func() error {
			_, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("del"), SecretString: aws.String("w")})
			return err
		},
	}
	for name, call := range reads {
		if err := call(); !errors.As(err, &ir) {
			t.Errorf("%s on a secret scheduled for deletion: want InvalidRequestException, got %v", name, err)
		}
	}

	listed := func(include bool) int {
		out, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(include)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.SecretList)
	}
	if listed(false) != 0 || listed(true) != 1 {
		t.Fatalf("ListSecrets shows %d without and %d with IncludePlannedDeletion; want 0 and 1", listed(false), listed(true))
	}

	if _, err := f.client.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("del")}); err != nil {
		t.Fatalf("RestoreSecret: %v", err)
	}
	if got := getString(t, ctx, f.client, "del", StageCurrent); got != "v" {
		t.Fatalf("restored secret reads %q", got)
	}
	d, _ = f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("del")})
	if d.DeletedDate != nil {
		t.Fatalf("restored secret keeps DeletedDate %v", d.DeletedDate)
	}

	// Once the clock passes the recovery window, the secret is gone and its
	// name is free again.
	if _, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("del"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(7*24*time.Hour - time.Second)
	if _, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("del")}); err != nil {
		t.Fatalf("a second before the window ends the secret is gone: %v", err)
	}
	f.clock.Advance(time.Second)
	var nf *types.ResourceNotFoundException
	if _, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("del")}); !errors.As(err, &nf) {
		t.Fatalf("after the window: want ResourceNotFoundException, got %v", err)
	}
	if _, err := f.client.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("del")}); !errors.As(err, &nf) {
		t.Fatalf("RestoreSecret after the window: want ResourceNotFoundException, got %v", err)
	}
	if _, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("del"), SecretString: aws.String("new")}); err != nil {
		t.Fatalf("re-create after the window: %v", err)
	}
}

func TestForceDelete(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "f", SecretString: str("v")})
	out, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("f"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	if err != nil || !aws.ToTime(out.DeletionDate).Equal(t0) {
		t.Fatalf("forced DeleteSecret: %+v, %v", out, err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("f")}); !errors.As(err, &nf) {
		t.Fatalf("force-deleted secret still describes: %v", err)
	}
	// The service answers a forced delete of an unknown secret with success,
	// and an unforced one with ResourceNotFoundException.
	if _, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("never"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatalf("forced delete of an unknown secret: %v", err)
	}
	if _, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("never")}); !errors.As(err, &nf) {
		t.Fatalf("delete of an unknown secret: want ResourceNotFoundException, got %v", err)
	}
}

func TestDeleteParameterRules(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "p", SecretString: str("v")})
	var ip *types.InvalidParameterException
	for _, in := range []*secretsmanager.DeleteSecretInput{
		{SecretId: aws.String("p"), RecoveryWindowInDays: aws.Int64(6)},
		{SecretId: aws.String("p"), RecoveryWindowInDays: aws.Int64(31)},
		{SecretId: aws.String("p"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)},
		{SecretId: aws.String("unknown"), RecoveryWindowInDays: aws.Int64(3)}, // checked before existence
	} {
		if _, err := f.client.DeleteSecret(ctx, in); !errors.As(err, &ip) {
			t.Errorf("DeleteSecret(window %v, force %v): want InvalidParameterException, got %v", aws.ToInt64(in.RecoveryWindowInDays), aws.ToBool(in.ForceDeleteWithoutRecovery), err)
		}
	}
	out, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("p")})
	if err != nil || !aws.ToTime(out.DeletionDate).Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("default recovery window is not 30 days: %+v, %v", out, err)
	}
}
