package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestRotateJSONSecret(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "rds", SecretString: str(`{"username":"app","password":"old","port":5432}`)})
	f.clock.Advance(time.Hour)
	out, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:      aws.String("rds"),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	cur, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("rds")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cur.VersionId) != aws.ToString(out.VersionId) {
		t.Fatalf("AWSCURRENT is %s, rotation made %s", aws.ToString(cur.VersionId), aws.ToString(out.VersionId))
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &v); err != nil {
		t.Fatalf("rotated value is not JSON: %v", err)
	}
	if v["username"] != "app" || v["port"] != float64(5432) || v["password"] == "old" || len(v["password"].(string)) != rotatedPasswordLen || len(v) != 3 {
		t.Fatalf("rotated value kept the wrong keys or password (keys %d)", len(v))
	}
	if got := getString(t, ctx, f.client, "rds", StagePrevious); got != `{"username":"app","password":"old","port":5432}` {
		t.Fatalf("AWSPREVIOUS does not hold the old value")
	}
	if _, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("rds"), VersionStage: aws.String(StagePending)}); err == nil {
		t.Fatalf("AWSPENDING is left after a completed rotation")
	}
	d, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("rds")})
	if err != nil {
		t.Fatal(err)
	}
	rotated := t0.Add(time.Hour)
	if !aws.ToBool(d.RotationEnabled) || !aws.ToTime(d.LastRotatedDate).Equal(rotated) ||
		!aws.ToTime(d.NextRotationDate).Equal(rotated.Add(30*24*time.Hour)) || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 {
		t.Fatalf("rotation details: enabled %v last %v next %v", d.RotationEnabled, d.LastRotatedDate, d.NextRotationDate)
	}
}

func TestRotateStringAndBinarySecrets(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "plain", SecretString: str("not json")})
	mustCreate(t, f.emu, Secret{Name: "bin", SecretBinary: []byte{1, 2, 3}})
	if _, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("plain"), RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("rate(4 hours)")}}); err != nil {
		t.Fatal(err)
	}
	if got := getString(t, ctx, f.client, "plain", StageCurrent); got == "not json" || len(got) != rotatedPasswordLen {
		t.Fatalf("rotated plain secret: length %d", len(got))
	}
	d, _ := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("plain")})
	if !aws.ToTime(d.NextRotationDate).Equal(t0.Add(4 * time.Hour)) {
		t.Fatalf("NextRotationDate %v for rate(4 hours)", d.NextRotationDate)
	}
	if _, err := f.emu.RotateSecret("bin"); err != nil {
		t.Fatal(err)
	}
	cur, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || cur.SecretBinary == nil || bytes.Equal(cur.SecretBinary, []byte{1, 2, 3}) {
		t.Fatalf("rotated binary secret: %v", err)
	}
}

func TestRotateRules(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "r", SecretString: str("v")})
	// A version labelled only AWSPENDING is a rotation in progress.
	if _, err := f.emu.PutSecretValue("r", Version{SecretString: str("pending"), VersionStages: []string{StagePending}}); err != nil {
		t.Fatal(err)
	}
	var ir *types.InvalidRequestException
	if _, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("r")}); !errors.As(err, &ir) {
		t.Fatalf("rotation while AWSPENDING is elsewhere: want InvalidRequestException, got %v", err)
	}
	var ip *types.InvalidParameterException
	if _, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("r"), RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("every tuesday")}}); !errors.As(err, &ip) {
		t.Fatalf("bad schedule: want InvalidParameterException, got %v", err)
	}
	mustCreate(t, f.emu, Secret{Name: "later", SecretString: str("v")})
	out, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("later"), RotateImmediately: aws.Bool(false), RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(2)}})
	if err != nil || out.VersionId != nil {
		t.Fatalf("RotateImmediately=false: %+v, %v", out, err)
	}
	if got := getString(t, ctx, f.client, "later", StageCurrent); got != "v" {
		t.Fatalf("RotateImmediately=false changed the value")
	}
	d, _ := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("later")})
	if !aws.ToTime(d.NextRotationDate).Equal(t0.Add(48 * time.Hour)) {
		t.Fatalf("NextRotationDate %v", d.NextRotationDate)
	}
	// A retried rotation with the same token makes no second version.
	const tok = "33333333-2222-4333-8444-555555555555"
	for range 2 {
		if _, err := f.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("later"), ClientRequestToken: aws.String(tok)}); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := f.client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("later")})
	if len(list.Versions) != 2 {
		t.Fatalf("%d versions after a retried rotation, want 2", len(list.Versions))
	}
}
