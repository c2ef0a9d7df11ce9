package emulator

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestRunCommand runs the command as "secretsfs emulator" does: it reads
// the printed URL, makes SDK calls against it, cancels, and sees it return.
func TestRunCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs strings.Builder
	done := make(chan error, 1)
	go func() {
		err := RunCommand(ctx, CommandConfig{Listen: "127.0.0.1:0", SeedFile: "testdata/seed.json"}, pw, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil)))
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q is not a loopback URL", line)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	c := sdkClient(url)
	cctx := ctxT(t)
	out, err := c.GetSecretValue(cctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/api-key")})
	if err != nil || aws.ToString(out.SecretString) != "new-key" {
		t.Fatalf("seeded secret through the command: %v", err)
	}
	if _, err := c.CreateSecret(cctx, &secretsmanager.CreateSecretInput{Name: aws.String("made/here"), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	calls, err := NewControlClient(url, nil).Calls(cctx)
	if err != nil || calls[OpGetSecretValue] != 1 || calls[OpCreateSecret] != 1 {
		t.Fatalf("control endpoint of the command: %v, %v", calls, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunCommand returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunCommand did not return after cancel")
	}
	if !dialRefused(strings.TrimPrefix(url, "http://")) {
		t.Fatal("the port is still open after the command returned")
	}
	// The command has returned: nothing writes the log any more.
	if l := logs.String(); !strings.Contains(l, "emulator ready") || !strings.Contains(l, "emulator stopped") || strings.Contains(l, "new-key") {
		t.Fatalf("log: %s", l)
	}
}

func TestRunCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"Secrets": [{"Name": "x y", "SecretString": "v"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	badIAM := filepath.Join(dir, "iam.json")
	if err := os.WriteFile(badIAM, []byte(`{"Secrets": [], "IAM": {"Roles": [{"ARN": "arn:aws:iam::123456789012:user/x"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cfg     CommandConfig
		mention []string
	}{
		{CommandConfig{SeedFile: filepath.Join(dir, "absent.json")}, []string{"absent.json", "no such file"}},
		{CommandConfig{SeedFile: badIAM}, []string{"iam.json", "IAM.Roles[0].ARN", "role/NAME"}},
		{CommandConfig{SeedFile: bad}, []string{"bad.json", `secret 1 ("x y")`, "Invalid name"}},
		{CommandConfig{Listen: "not-an-address"}, []string{"not-an-address"}},
	}
	for _, tc := range cases {
		err := RunCommand(context.Background(), tc.cfg, io.Discard, nil)
		if err == nil {
			t.Errorf("%+v: no error", tc.cfg)
			continue
		}
		for _, m := range tc.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%+v: error %q does not mention %q", tc.cfg, err, m)
			}
		}
	}
}
