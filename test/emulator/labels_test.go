package emulator

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// stages returns DescribeSecret's VersionIdsToStages with each list sorted.
func stages(t *testing.T, ctx context.Context, c *secretsmanager.Client, id string) map[string][]string {
	t.Helper()
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret(%q): %v", id, err)
	}
	for _, v := range d.VersionIdsToStages {
		slices.Sort(v)
	}
	return d.VersionIdsToStages
}

func wantStages(t *testing.T, got, want map[string][]string) {
	t.Helper()
	if !maps.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("VersionIdsToStages = %v, want %v", got, want)
	}
}

func put(t *testing.T, ctx context.Context, c *secretsmanager.Client, id, value string, labels ...string) string {
	t.Helper()
	out, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value), VersionStages: labels})
	if err != nil {
		t.Fatalf("PutSecretValue(%q, %v): %v", id, labels, err)
	}
	return aws.ToString(out.VersionId)
}

func getString(t *testing.T, ctx context.Context, c *secretsmanager.Client, id, stage string) string {
	t.Helper()
	out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetSecretValue(%q, %s): %v", id, stage, err)
	}
	return aws.ToString(out.SecretString)
}

func TestPutSecretValueMovesCurrentAndPrevious(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	out, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	v1 := aws.ToString(out.VersionId)
	v2 := put(t, ctx, f.client, "db", "v2")
	wantStages(t, stages(t, ctx, f.client, "db"), map[string][]string{v1: {StagePrevious}, v2: {StageCurrent}})
	if getString(t, ctx, f.client, "db", StageCurrent) != "v2" || getString(t, ctx, f.client, "db", StagePrevious) != "v1" {
		t.Fatalf("after one put, AWSCURRENT/AWSPREVIOUS do not hold v2/v1")
	}
	v3 := put(t, ctx, f.client, "db", "v3")
	// v1 lost its last label: deprecated, gone from VersionIdsToStages.
	wantStages(t, stages(t, ctx, f.client, "db"), map[string][]string{v2: {StagePrevious}, v3: {StageCurrent}})

	// ListSecretVersionIds hides deprecated versions unless asked.
	list, err := f.client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db")})
	if err != nil || len(list.Versions) != 2 {
		t.Fatalf("ListSecretVersionIds: %+v, %v", list, err)
	}
	list, err = f.client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db"), IncludeDeprecated: aws.Bool(true)})
	if err != nil || len(list.Versions) != 3 || aws.ToString(list.Versions[2].VersionId) != v1 || len(list.Versions[2].VersionStages) != 0 {
		t.Fatalf("ListSecretVersionIds(IncludeDeprecated): %+v, %v", list, err)
	}
	// A deprecated version is still readable by id.
	old, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String(v1)})
	if err != nil || aws.ToString(old.SecretString) != "v1" || len(old.VersionStages) != 0 {
		t.Fatalf("GetSecretValue(deprecated v1): %+v, %v", old, err)
	}
}

// TestPutSecretValueCustomLabels follows the service's documented example:
// labels move between versions, and AWSCURRENT stays put unless named.
func TestPutSecretValueCustomLabels(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	out, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	v1 := aws.ToString(out.VersionId)
	v2 := put(t, ctx, f.client, "s", "v2", "SAMPLESTAGE1", "SAMPLESTAGE0")
	wantStages(t, stages(t, ctx, f.client, "s"), map[string][]string{v1: {StageCurrent}, v2: {"SAMPLESTAGE0", "SAMPLESTAGE1"}})
	v3 := put(t, ctx, f.client, "s", "v3", "SAMPLESTAGE1")
	wantStages(t, stages(t, ctx, f.client, "s"), map[string][]string{v1: {StageCurrent}, v2: {"SAMPLESTAGE0"}, v3: {"SAMPLESTAGE1"}})
	v4 := put(t, ctx, f.client, "s", "v4", StagePending)
	wantStages(t, stages(t, ctx, f.client, "s"), map[string][]string{v1: {StageCurrent}, v2: {"SAMPLESTAGE0"}, v3: {"SAMPLESTAGE1"}, v4: {StagePending}})
	if got := getString(t, ctx, f.client, "s", StageCurrent); got != "v1" {
		t.Fatalf("AWSCURRENT moved to %q", got)
	}
	if got := getString(t, ctx, f.client, "s", "SAMPLESTAGE1"); got != "v3" {
		t.Fatalf("SAMPLESTAGE1 reads %q", got)
	}
}

func TestFirstVersionAlwaysGetsCurrent(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("GetSecretValue of a secret without value: want ResourceNotFoundException, got %v", err)
	}
	v := put(t, ctx, f.client, "empty", "first", "CUSTOM")
	wantStages(t, stages(t, ctx, f.client, "empty"), map[string][]string{v: {StageCurrent, "CUSTOM"}})
}

func TestIdempotencyTokens(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	const tok = "11111111-2222-4333-8444-555555555555"
	create := func(value string) (*secretsmanager.CreateSecretOutput, error) {
		return f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("idem"), ClientRequestToken: aws.String(tok), SecretString: aws.String(value)})
	}
	first, err := create("a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := create("a")
	if err != nil || aws.ToString(again.ARN) != aws.ToString(first.ARN) || aws.ToString(again.VersionId) != tok {
		t.Fatalf("retried CreateSecret: %+v, %v", again, err)
	}
	_, err = create("different")
	var exists *types.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("CreateSecret of an existing name with another value: want ResourceExistsException, got %v", err)
	}

	const tok2 = "22222222-2222-4333-8444-555555555555"
	putTok := func(value string) (*secretsmanager.PutSecretValueOutput, error) {
		return f.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(tok2), SecretString: aws.String(value)})
	}
	if _, err := putTok("b"); err != nil {
		t.Fatal(err)
	}
	if out, err := putTok("b"); err != nil || aws.ToString(out.VersionId) != tok2 {
		t.Fatalf("retried PutSecretValue: %+v, %v", out, err)
	}
	_, err = putTok("c")
	if !errors.As(err, &exists) {
		t.Fatalf("PutSecretValue reusing a token with another value: want ResourceExistsException, got %v", err)
	}
	all, err := f.client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("idem"), IncludeDeprecated: aws.Bool(true)})
	if err != nil || len(all.Versions) != 2 {
		t.Fatalf("retries made extra versions: %+v, %v", all, err)
	}
	if getString(t, ctx, f.client, "idem", StageCurrent) != "b" || getString(t, ctx, f.client, "idem", StagePrevious) != "a" {
		t.Fatalf("retries moved the labels")
	}
}

// TestUpdateSecretVersionStage follows the service's documented rules for
// moving a label.
func TestUpdateSecretVersionStage(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	out, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("u"), SecretString: aws.String("old")})
	if err != nil {
		t.Fatal(err)
	}
	vOld := aws.ToString(out.VersionId)
	vNew := put(t, ctx, f.client, "u", "new", StagePending)
	move := func(label, from, to string) error {
		in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("u"), VersionStage: aws.String(label)}
		if from != "" {
			in.RemoveFromVersionId = aws.String(from)
		}
		if to != "" {
			in.MoveToVersionId = aws.String(to)
		}
		_, err := f.client.UpdateSecretVersionStage(ctx, in)
		return err
	}
	var ip *types.InvalidParameterException
	if err := move(StageCurrent, "", vNew); !errors.As(err, &ip) {
		t.Fatalf("moving AWSCURRENT without RemoveFromVersionId: want InvalidParameterException, got %v", err)
	}
	if err := move(StageCurrent, vNew, vNew); !errors.As(err, &ip) {
		t.Fatalf("RemoveFromVersionId not holding the label: want InvalidParameterException, got %v", err)
	}
	if err := move(StageCurrent, vOld, ""); !errors.As(err, &ip) {
		t.Fatalf("removing AWSCURRENT without a new home: want InvalidParameterException, got %v", err)
	}
	if err := move(StageCurrent, vOld, "00000000-0000-4000-8000-000000000000"); !errors.As(err, &ip) {
		t.Fatalf("moving to an unknown version: want InvalidParameterException, got %v", err)
	}
	wantStages(t, stages(t, ctx, f.client, "u"), map[string][]string{vOld: {StageCurrent}, vNew: {StagePending}})

	if err := move(StageCurrent, vOld, vNew); err != nil {
		t.Fatalf("move AWSCURRENT: %v", err)
	}
	wantStages(t, stages(t, ctx, f.client, "u"), map[string][]string{vOld: {StagePrevious}, vNew: {StageCurrent, StagePending}})
	if got := getString(t, ctx, f.client, "u", StageCurrent); got != "new" {
		t.Fatalf("GetSecretValue after the move reads %q", got)
	}
	// Removing a label without moving it; the version keeps its others.
	if err := move(StagePending, vNew, ""); err != nil {
		t.Fatalf("remove AWSPENDING: %v", err)
	}
	// A custom label moved onto a version without a holder needs no
	// RemoveFromVersionId.
	if err := move("BLUE", "", vOld); err != nil {
		t.Fatalf("attach BLUE: %v", err)
	}
	wantStages(t, stages(t, ctx, f.client, "u"), map[string][]string{vOld: {StagePrevious, "BLUE"}, vNew: {StageCurrent}})

	// A version carries at most 20 labels.
	for i := range 18 {
		if err := move("L"+string(rune('a'+i)), "", vOld); err != nil {
			t.Fatalf("label %d: %v", i, err)
		}
	}
	var le *types.LimitExceededException
	if err := move("ONE-TOO-MANY", "", vOld); !errors.As(err, &le) {
		t.Fatalf("21st label: want LimitExceededException, got %v", err)
	}
}

func TestDeprecatedVersionsAreBounded(t *testing.T) {
	e := New()
	mustCreate(t, e, Secret{Name: "busy", SecretString: str("0")})
	for i := range 150 {
		if _, err := e.PutSecretValue("busy", Version{SecretString: str(string(rune('a' + i%26)))}); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	n := len(e.secrets["busy"].versions)
	e.mu.Unlock()
	if n != maxDeprecated+2 {
		t.Fatalf("%d versions kept, want %d deprecated + AWSCURRENT + AWSPREVIOUS", n, maxDeprecated)
	}
}
