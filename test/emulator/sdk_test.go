package emulator

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

var (
	arnPattern  = regexp.MustCompile(`^arn:aws:secretsmanager:eu-west-3:210987654321:secret:prod/db-[A-Za-z0-9]{6}$`)
	uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestCreateAndGetStringSecret(t *testing.T) {
	f := newFixture(t, WithRegion("eu-west-3"), WithAccountID("210987654321"))
	ctx := ctxT(t)
	out, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("prod/db"),
		Description:  aws.String("database login"),
		SecretString: aws.String(`{"user":"app","password":"hunter2"}`),
		Tags:         []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}},
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if !arnPattern.MatchString(aws.ToString(out.ARN)) || aws.ToString(out.Name) != "prod/db" {
		t.Fatalf("CreateSecret answered ARN %q, Name %q", aws.ToString(out.ARN), aws.ToString(out.Name))
	}
	if !uuidPattern.MatchString(aws.ToString(out.VersionId)) {
		t.Fatalf("VersionId %q is not a UUID", aws.ToString(out.VersionId))
	}
	for _, in := range []*secretsmanager.GetSecretValueInput{
		{SecretId: aws.String("prod/db")},
		{SecretId: aws.String("prod/db"), VersionStage: aws.String(StageCurrent)},
		{SecretId: out.ARN, VersionId: out.VersionId},
		{SecretId: out.ARN, VersionId: out.VersionId, VersionStage: aws.String(StageCurrent)},
	} {
		got, err := f.client.GetSecretValue(ctx, in)
		if err != nil {
			t.Fatalf("GetSecretValue(%+v): %v", in, err)
		}
		if aws.ToString(got.SecretString) != `{"user":"app","password":"hunter2"}` || got.SecretBinary != nil {
			t.Fatalf("GetSecretValue returned the wrong value")
		}
		if aws.ToString(got.VersionId) != aws.ToString(out.VersionId) || !slices.Equal(got.VersionStages, []string{StageCurrent}) {
			t.Fatalf("GetSecretValue: version %q stages %v", aws.ToString(got.VersionId), got.VersionStages)
		}
		if !got.CreatedDate.Equal(t0) {
			t.Fatalf("CreatedDate %v, want %v", got.CreatedDate, t0)
		}
	}
}

func TestBinarySecretRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	value := []byte{0, 1, 2, 3, 0xfe, 0xff, '\n'}
	if _, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tls/key"), SecretBinary: value}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	got, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("tls/key")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if !bytes.Equal(got.SecretBinary, value) || got.SecretString != nil {
		t.Fatalf("binary value changed on the way: %v", got.SecretBinary)
	}
}

func TestSecretIDForms(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	arn := mustCreate(t, f.emu, Secret{Name: "app/key-one", SecretString: str("v")})
	partial := arn[:len(arn)-7]
	for _, id := range []string{"app/key-one", arn, partial} {
		out, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("DescribeSecret(%q): %v", id, err)
		}
		if aws.ToString(out.ARN) != arn {
			t.Fatalf("DescribeSecret(%q) found %q", id, aws.ToString(out.ARN))
		}
	}
	otherSuffix := partial + "-" + strings.Repeat("Z", 6)
	if otherSuffix == arn {
		otherSuffix = partial + "-" + strings.Repeat("Y", 6)
	}
	for _, id := range []string{otherSuffix, "app/key", "arn:aws:secretsmanager:us-east-1:999999999999:secret:app/key-one"} {
		_, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("DescribeSecret(%q): want ResourceNotFoundException, got %v", id, err)
		}
	}
	// A re-created secret gets a new ARN; the old full ARN no longer
	// resolves, the name and partial ARN do.
	if _, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	arn2 := mustCreate(t, f.emu, Secret{Name: "app/key-one", SecretString: str("v2")})
	if arn2 == arn {
		t.Fatalf("re-created secret kept its ARN suffix")
	}
	if _, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); err == nil {
		t.Fatalf("the old ARN still resolves")
	}
	if out, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(partial)}); err != nil || aws.ToString(out.ARN) != arn2 {
		t.Fatalf("partial ARN after re-create: %v %v", out, err)
	}
}

func TestDescribeSecret(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{
		Name: "svc/api", Description: "api key",
		Tags:     []Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "core"}},
		Versions: []Version{{SecretString: str("a")}, {SecretString: str("b")}},
	})
	f.clock.Advance(time.Hour)
	out, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc/api")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if aws.ToString(out.Description) != "api key" || len(out.Tags) != 2 || aws.ToString(out.Tags[1].Key) != "team" || aws.ToString(out.Tags[1].Value) != "core" {
		t.Fatalf("description/tags: %q %+v", aws.ToString(out.Description), out.Tags)
	}
	if len(out.VersionIdsToStages) != 2 {
		t.Fatalf("VersionIdsToStages: %v", out.VersionIdsToStages)
	}
	var stages [][]string
	for _, s := range out.VersionIdsToStages {
		stages = append(stages, s)
	}
	slices.SortFunc(stages, func(a, b []string) int { return len(a[0]) - len(b[0]) })
	if stages[0][0] != StageCurrent || stages[1][0] != StagePrevious {
		t.Fatalf("VersionIdsToStages stages: %v", stages)
	}
	if !out.CreatedDate.Equal(t0) || !out.LastChangedDate.Equal(t0) {
		t.Fatalf("dates: created %v changed %v", out.CreatedDate, out.LastChangedDate)
	}
	if out.DeletedDate != nil || out.NextRotationDate != nil || aws.ToBool(out.RotationEnabled) {
		t.Fatalf("a fresh secret reports deletion or rotation: %+v", out)
	}
}

func TestUpdateSecret(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "s", SecretString: str("one")})
	out, err := f.client.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("s"), Description: aws.String("new words")})
	if err != nil || out.VersionId != nil {
		t.Fatalf("UpdateSecret(description) = %+v, %v; want no new version", out, err)
	}
	out, err = f.client.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("s"), SecretString: aws.String("two")})
	if err != nil || out.VersionId == nil {
		t.Fatalf("UpdateSecret(value) = %+v, %v; want a new version", out, err)
	}
	cur, _ := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
	prev, _ := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s"), VersionStage: aws.String(StagePrevious)})
	if aws.ToString(cur.SecretString) != "two" || aws.ToString(cur.VersionId) != aws.ToString(out.VersionId) || aws.ToString(prev.SecretString) != "one" {
		t.Fatalf("after UpdateSecret: current %q, previous %q", aws.ToString(cur.SecretString), aws.ToString(prev.SecretString))
	}
	d, _ := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if aws.ToString(d.Description) != "new words" {
		t.Fatalf("description %q", aws.ToString(d.Description))
	}
	_, err = f.client.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("s"), SecretString: aws.String("x"), SecretBinary: []byte("x")})
	var ip *types.InvalidParameterException
	if !errors.As(err, &ip) {
		t.Fatalf("UpdateSecret with both values: want InvalidParameterException, got %v", err)
	}
}

func TestTagAndUntagResource(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "t", SecretString: str("v"), Tags: []Tag{{Key: "a", Value: "1"}}})
	if _, err := f.client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("t"), Tags: []types.Tag{
		{Key: aws.String("a"), Value: aws.String("2")}, {Key: aws.String("b"), Value: aws.String("3")},
	}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := f.client.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("t"), TagKeys: []string{"b", "missing"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	d, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "a" || aws.ToString(d.Tags[0].Value) != "2" {
		t.Fatalf("tags after tag+untag: %+v", d.Tags)
	}
	_, err = f.client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("nope"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("TagResource on a missing secret: %v", err)
	}
}
