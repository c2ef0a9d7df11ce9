package emulator

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

func (f *fixture) get(ctx context.Context, id string) (string, error) {
	out, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func TestCallCounters(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "c", SecretString: str("v")})
	if got := f.emu.CallCounts(); len(got) != 0 {
		t.Fatalf("in-process CreateSecret was counted: %v", got)
	}
	for range 3 {
		if _, err := f.get(ctx, "c"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.get(ctx, "missing"); err == nil {
		t.Fatal("want an error")
	}
	if _, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	if n := f.emu.Calls(OpGetSecretValue); n != 4 {
		t.Fatalf("GetSecretValue counted %d, want 4 (failed calls count too)", n)
	}
	want := map[string]int{OpGetSecretValue: 4, OpDescribeSecret: 1}
	got := f.emu.CallCounts()
	if len(got) != len(want) || got[OpGetSecretValue] != 4 || got[OpDescribeSecret] != 1 {
		t.Fatalf("CallCounts = %v, want %v", got, want)
	}
	got[OpGetSecretValue] = 100 // a copy
	if f.emu.Calls(OpGetSecretValue) != 4 {
		t.Fatal("CallCounts returned the emulator's own map")
	}
	f.emu.ResetCalls()
	if n := f.emu.Calls(OpGetSecretValue); n != 0 {
		t.Fatalf("after ResetCalls: %d", n)
	}

	// WaitForCalls returns once the count is reached by calls made
	// concurrently, and gives up with ctx.
	done := make(chan error, 1)
	go func() {
		_, err := f.get(ctx, "c")
		done <- err
	}()
	if n, err := f.emu.WaitForCalls(ctx, OpGetSecretValue, 1); err != nil || n != 1 {
		t.Fatalf("WaitForCalls: %d, %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := f.emu.WaitForCalls(short, OpGetSecretValue, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForCalls for a call that never comes: %v", err)
	}
}

// SecretCalls counts the calls naming one secret, by name or by ARN, and
// failed ones too; ResetCalls clears it.
func TestSecretCalls(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "a", SecretString: str("v")})
	mustCreate(t, f.emu, Secret{Name: "b", SecretString: str("v")})
	d, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("a")})
	if err != nil {
		t.Fatal(err)
	}
	f.get(ctx, "a")
	f.get(ctx, aws.ToString(d.ARN))
	f.get(ctx, "b")
	f.get(ctx, "missing")
	for _, c := range []struct {
		op, name string
		want     int
	}{
		{OpGetSecretValue, "a", 2}, {OpDescribeSecret, "a", 1}, {OpGetSecretValue, "b", 1},
		{OpDescribeSecret, "b", 0}, {OpGetSecretValue, "missing", 1},
	} {
		if n := f.emu.SecretCalls(c.op, c.name); n != c.want {
			t.Errorf("SecretCalls(%s, %s) = %d, want %d", c.op, c.name, n, c.want)
		}
	}
	f.emu.ResetCalls()
	if n := f.emu.SecretCalls(OpGetSecretValue, "a"); n != 0 {
		t.Fatalf("after ResetCalls: %d", n)
	}
}

func TestFaultTimesAndOrder(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "c", SecretString: str("v")})
	f.emu.InjectFault(OpGetSecretValue, Fault{ErrorType: ErrThrottling, Times: 2})
	f.emu.InjectFault(OpGetSecretValue, Fault{ErrorType: ErrAccessDenied, Message: "no way", Times: 1})
	f.emu.InjectFault(AllOperations, Fault{ErrorType: ErrInternalServiceError, Times: 1})
	var codes []string
	for range 5 {
		_, err := f.get(ctx, "c")
		if err == nil {
			codes = append(codes, "ok")
			continue
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("not an API error: %v", err)
		}
		codes = append(codes, ae.ErrorCode())
		if ae.ErrorCode() == ErrAccessDenied && ae.ErrorMessage() != "no way" {
			t.Fatalf("message %q", ae.ErrorMessage())
		}
	}
	want := []string{ErrThrottling, ErrThrottling, ErrAccessDenied, ErrInternalServiceError, "ok"}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("answers %v, want %v", codes, want)
		}
	}
	// A fault without Times lasts until ClearFaults, and only hits its
	// operation.
	f.emu.InjectFault(OpGetSecretValue, Fault{ErrorType: ErrDecryptionFailure})
	for range 3 {
		if _, err := f.get(ctx, "c"); err == nil {
			t.Fatal("unlimited fault stopped")
		}
	}
	if _, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("c")}); err != nil {
		t.Fatalf("a GetSecretValue fault hit DescribeSecret: %v", err)
	}
	f.emu.ClearFaults()
	if _, err := f.get(ctx, "c"); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
}

func TestFaultLatency(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "c", SecretString: str("v")})
	const delay = 150 * time.Millisecond
	f.emu.InjectFault(OpGetSecretValue, Fault{Latency: delay, Times: 1})
	start := time.Now()
	if v, err := f.get(ctx, "c"); err != nil || v != "v" {
		t.Fatalf("delayed call: %q, %v", v, err)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("call took %v, want at least %v", took, delay)
	}
	// A client that gives up ends the wait.
	f.emu.InjectFault(OpGetSecretValue, Fault{Latency: time.Hour, ErrorType: ErrThrottling, Times: 1})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := f.get(short, "c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the client's deadline, got %v", err)
	}
}

func TestFaultDropsConnection(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "c", SecretString: str("v")})
	f.emu.InjectFault(OpGetSecretValue, Fault{Drop: true, Times: 1})
	_, err := f.get(ctx, "c")
	if err == nil {
		t.Fatal("dropped call succeeded")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		t.Fatalf("a dropped connection became an API error: %v", err)
	}
	if v, err := f.get(ctx, "c"); err != nil || v != "v" {
		t.Fatalf("next call: %q, %v", v, err)
	}
}

// dialRefused reports whether a TCP connection to addr is refused.
func dialRefused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func TestRefuseConnections(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "c", SecretString: str("v")})
	if _, err := f.get(ctx, "c"); err != nil { // opens a keep-alive connection
		t.Fatal(err)
	}
	if err := f.srv.SetRefusing(true); err != nil {
		t.Fatal(err)
	}
	if !f.srv.Refusing() || !dialRefused(f.srv.Addr()) {
		t.Fatal("the port still accepts connections")
	}
	// The kept-alive connection was closed too: the SDK cannot get through.
	if _, err := f.get(ctx, "c"); err == nil {
		t.Fatal("a call went through while refusing")
	}
	if err := f.srv.SetRefusing(false); err != nil {
		t.Fatal(err)
	}
	if v, err := f.get(ctx, "c"); err != nil || v != "v" {
		t.Fatalf("after refusing: %q, %v", v, err)
	}

	// A timed refusal ends by itself.
	if err := f.srv.RefuseConnections(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !dialRefused(f.srv.Addr()) {
		t.Fatal("RefuseConnections did not close the port")
	}
	deadline := time.Now().Add(5 * time.Second)
	for dialRefused(f.srv.Addr()) {
		if time.Now().After(deadline) {
			t.Fatal("the port did not reopen after the refusal")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if v, err := f.get(ctx, "c"); err != nil || v != "v" {
		t.Fatalf("after the timed refusal: %q, %v", v, err)
	}
}

func TestServerCloseEndsTimedRefusal(t *testing.T) {
	e := New()
	srv, err := Start(e, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RefuseConnections(time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close while refusing: %v", err)
	}
	if !dialRefused(srv.Addr()) {
		t.Fatal("a closed server accepts connections")
	}
	if err := srv.SetRefusing(false); err == nil {
		t.Fatal("a closed server reopened")
	}
}

func TestFaultForOneSecret(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	arn := mustCreate(t, f.emu, Secret{Name: "denied", SecretString: str("d")})
	mustCreate(t, f.emu, Secret{Name: "fine", SecretString: str("f")})
	f.emu.InjectFault(AllOperations, Fault{ErrorType: ErrAccessDenied, SecretID: "denied"})
	for _, id := range []string{"denied", arn} {
		_, err := f.get(ctx, id)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != ErrAccessDenied {
			t.Fatalf("get %s: %v, want AccessDeniedException", id, err)
		}
	}
	if got, err := f.get(ctx, "fine"); err != nil || got != "f" {
		t.Fatalf("another secret: %q, %v", got, err)
	}
	if _, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil {
		t.Fatalf("a call naming no secret was faulted: %v", err)
	}
	// Over the control endpoint too.
	f.emu.ClearFaults()
	cc := NewControlClient(f.srv.URL(), nil)
	if err := cc.InjectFault(ctx, OpGetSecretValue, Fault{ErrorType: ErrThrottling, SecretID: "fine", Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.get(ctx, "denied"); err != nil {
		t.Fatalf("the fault for another secret hit: %v", err)
	}
	if _, err := f.get(ctx, "fine"); err == nil {
		t.Fatal("the fault for fine did not play")
	}
	if _, err := f.get(ctx, "fine"); err != nil {
		t.Fatalf("the fault played more than Times: %v", err)
	}
}
