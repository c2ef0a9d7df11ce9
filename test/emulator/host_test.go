package emulator

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// rawGetSecretValue sends a GetSecretValue for id with the given Host
// header and returns the status and body.
func rawGetSecretValue(t *testing.T, url, host, id string) (int, string) {
	t.Helper()
	req := signedRequest(t, url, OpGetSecretValue, `{"SecretId":"`+id+`"}`)
	req.Host = host
	return testutil.Do(t, req)
}

// TestDefect9_15_EmulatorRefusesForeignHostHeaders: a web page whose name an
// attacker points at 127.0.0.1 (DNS rebinding) reaches a loopback server
// through the visitor's browser with its own name in the Host header; the
// emulator must not answer it.
func TestDefect9_15_EmulatorRefusesForeignHostHeaders(t *testing.T) {
	f := newFixture(t)
	const value = "rebinding-VALUE-42"
	if _, err := f.emu.CreateSecret(Secret{Name: "exists", SecretString: str(value)}); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(f.srv.Addr())
	for _, host := range []string{"rebind.example:" + port, "rebind.example", "127.0.0.1.nip.io:" + port, "localhost.example:" + port} {
		code, body := rawGetSecretValue(t, f.srv.URL(), host, "exists")
		if code != http.StatusForbidden || strings.Contains(body, value) {
			t.Errorf("Host %q: %d %q; want 403 without the value", host, code, body)
		}
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL()+ControlPrefix+"calls", nil)
		req.Host = host
		if code, body := testutil.Do(t, req); code != http.StatusForbidden {
			t.Errorf("Host %q on the control endpoint: %d %q; want 403", host, code, body)
		}
	}
	if n := f.emu.Calls(OpGetSecretValue); n != 0 {
		t.Errorf("%d refused requests were counted as calls", n)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "127.0.0.1", "[::1]:" + port} {
		if code, body := rawGetSecretValue(t, f.srv.URL(), host, "exists"); code != http.StatusOK || !strings.Contains(body, value) {
			t.Errorf("Host %q: %d %q; want 200 with the value", host, code, body)
		}
	}
	// The SDK, which sends the endpoint's host, is served.
	if _, err := f.client.ListSecrets(t.Context(), nil); err != nil {
		t.Errorf("the SDK is refused: %v", err)
	}
}

func TestAllowedHost(t *testing.T) {
	for _, tc := range []struct {
		listen, host string
		want         bool
	}{
		{"127.0.0.1:9765", "127.0.0.1:9765", true},
		{"127.0.0.1:9765", "127.0.0.2:9765", true},
		{"127.0.0.1:9765", "[::1]:9765", true},
		{"127.0.0.1:9765", "localhost", true},
		{"127.0.0.1:9765", "evil.example:9765", false},
		{"127.0.0.1:9765", "10.0.0.1:9765", false},
		{"127.0.0.1:9765", "", false},
		{"localhost:9765", "evil.example:9765", false},
		{"10.1.2.3:9765", "10.1.2.3:9765", true},
		{"10.1.2.3:9765", "localhost:9765", true},
		{"10.1.2.3:9765", "evil.example:9765", false},
		{"emulator:9765", "Emulator:9765", true},
		{"emulator:9765", "evil.example:9765", false},
		{"0.0.0.0:9765", "emulator:9765", true},
		{"[::]:9765", "anything", true},
		{":9765", "anything", true},
	} {
		if got := allowedHost(tc.listen, tc.host); got != tc.want {
			t.Errorf("listening on %q, Host %q allowed = %v, want %v", tc.listen, tc.host, got, tc.want)
		}
	}
}
