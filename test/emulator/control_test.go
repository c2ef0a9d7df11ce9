package emulator

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestControlEndpoint(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "c", SecretString: str("v")})
	cc := NewControlClient(f.srv.URL(), nil)
	if err := cc.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if _, err := f.get(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	calls, err := cc.Calls(ctx)
	if err != nil || calls[OpGetSecretValue] != 1 || len(calls) != 1 {
		t.Fatalf("Calls = %v, %v", calls, err)
	}
	if err := cc.ResetCalls(ctx); err != nil || f.emu.Calls(OpGetSecretValue) != 0 {
		t.Fatalf("ResetCalls: %v, count %d", err, f.emu.Calls(OpGetSecretValue))
	}

	if err := cc.InjectFault(ctx, OpGetSecretValue, Fault{ErrorType: ErrThrottling, Times: 1, Latency: 20 * time.Millisecond}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	start := time.Now()
	_, err = f.get(ctx, "c")
	wantCode(t, err, ErrThrottling)
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("the fault's latency was not applied")
	}
	if err := cc.InjectFault(ctx, AllOperations, Fault{Drop: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.get(ctx, "c"); err == nil {
		t.Fatal("the dropping fault did not apply")
	}
	if err := cc.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.get(ctx, "c"); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}

	if err := cc.RefuseConnections(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("RefuseConnections: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !f.srv.Refusing() {
		if time.Now().After(deadline) {
			t.Fatal("the server did not start refusing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for f.srv.Refusing() {
		if time.Now().After(deadline.Add(3 * time.Second)) {
			t.Fatal("the refusal did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cc.Health(ctx); err != nil {
		t.Fatalf("Health after the refusal: %v", err)
	}
	// The AWS protocol path is untouched by the control routes.
	if v, err := f.get(ctx, "c"); err != nil || v != "v" {
		t.Fatalf("GetSecretValue: %q, %v", v, err)
	}
}

func TestControlEndpointBadRequests(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		method, path, body string
		status             int
		mention            string
	}{
		{"POST", "faults", `{"Operation":"NoSuchOp","ErrorType":"X"}`, 400, "NoSuchOp"},
		{"POST", "faults", `{"Operation":"GetSecretValue"}`, 400, "ErrorType, Latency or Drop"},
		{"POST", "faults", `{"Operation":"GetSecretValue","Latency":"soon"}`, 400, "Latency"},
		{"POST", "faults", `{"Operation":"GetSecretValue","Colour":"red"}`, 400, "Colour"},
		{"POST", "faults", `{not json`, 400, "invalid JSON"},
		{"POST", "refuse", `{"Duration":"-1s"}`, 400, "Duration"},
		{"POST", "refuse", `{"Duration":"11m"}`, 400, "Duration"},
		{"GET", "nowhere", ``, 404, "nowhere"},
		{"PUT", "calls", ``, 404, "PUT"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(tc.method, f.srv.URL()+ControlPrefix+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.mention) {
			t.Errorf("%s %s %s: %d %s; want %d mentioning %q", tc.method, tc.path, tc.body, resp.StatusCode, b, tc.status, tc.mention)
		}
	}
	if f.srv.Refusing() {
		t.Fatal("a refused refusal closed the port")
	}
	if len(f.emu.CallCounts()) != 0 {
		t.Fatalf("control requests were counted as calls: %v", f.emu.CallCounts())
	}
}
