package emulator

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestSeedFile(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	seed, err := LoadSeedFile("testdata/seed.json")
	if err != nil {
		t.Fatalf("LoadSeedFile: %v", err)
	}
	if err := f.emu.Seed(seed); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if n := len(f.emu.CallCounts()); n != 0 {
		t.Fatalf("seeding was counted as calls: %v", f.emu.CallCounts())
	}
	if got := getString(t, ctx, f.client, "prod/db", StageCurrent); got != `{"username":"app","password":"hunter2"}` {
		t.Fatalf("prod/db reads the wrong value")
	}
	d, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
	if err != nil || aws.ToString(d.Description) != "database login" || len(d.Tags) != 2 {
		t.Fatalf("prod/db details: %+v, %v", d, err)
	}
	bin, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/tls-key")})
	if err != nil || !bytes.Equal(bin.SecretBinary, []byte{0, 1, 2, 3, 4, 0xff}) {
		t.Fatalf("binary seed: %v, %v", bin, err)
	}
	wantStages(t, stages(t, ctx, f.client, "prod/api-key"), map[string][]string{
		"00000000-0000-4000-8000-000000000001": {StagePrevious},
		"00000000-0000-4000-8000-000000000002": {StageCurrent},
		"00000000-0000-4000-8000-000000000003": {StagePending},
	})
}

func TestSeedFileErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		mention       []string
	}{
		{"syntax.json", "{\n  \"Secrets\": [\n    {\"Name\": \"a\",}\n  ]\n}", []string{"syntax.json", "line 3", "invalid JSON"}},
		{"unknown.json", `{"Secrets": [{"Name": "a", "SecretStrin": "x"}]}`, []string{"unknown.json", "SecretStrin"}},
		{"type.json", `{"Secrets": [{"Name": 5}]}`, []string{"type.json", "Name", "string"}},
		{"empty.json", ``, []string{"empty.json", "empty file"}},
		{"badbase64.json", `{"Secrets": [{"Name": "a", "SecretBinary": "***"}]}`, []string{"badbase64.json"}},
	}
	for _, tc := range cases {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSeedFile(path)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, m)
			}
		}
	}
	if _, err := LoadSeedFile(filepath.Join(dir, "absent.json")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing file: %v", err)
	}

	// Rule violations name the secret and the rule, and never the value.
	e := New()
	err := e.Seed(SeedFile{Secrets: []Secret{
		{Name: "ok", SecretString: str("fine")},
		{Name: "bad name!", SecretString: str("s3cr3t-value")},
	}})
	if err == nil || !strings.Contains(err.Error(), `secret 2 ("bad name!")`) || !strings.Contains(err.Error(), "Invalid name") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("bad name: %v", err)
	}
	err = e.Seed(SeedFile{Secrets: []Secret{{Name: "twice", Versions: []Version{
		{VersionId: "00000000-0000-4000-8000-000000000009", SecretString: str("one-s3cr3t")},
		{VersionId: "00000000-0000-4000-8000-000000000009", SecretString: str("two-s3cr3t")},
	}}}})
	var aerr *Error
	if !errors.As(err, &aerr) || aerr.Code != ErrResourceExists || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("reused version id: %v", err)
	}
	if _, err := e.Stages("twice"); err == nil {
		t.Fatal("a secret whose versions failed was left behind")
	}
	if _, err := e.CreateSecret(Secret{Name: "both", SecretString: str("a"), Versions: []Version{{SecretString: str("b")}}}); err == nil {
		t.Fatal("SecretString and Versions together were accepted")
	}
}
