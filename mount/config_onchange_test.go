package mount

import (
	"strings"
	"testing"

	"github.com/secretsfs/secretsfs/mount/mapping"
)

// validateSignal validates a config whose --on-change-signal is sig.
func validateSignal(sig string) error {
	c := validConfig()
	c.OnChange = &mapping.OnChange{Signal: sig, PIDFile: "/p"}
	return c.Validate()
}

// TestDefect11_01_SignalsTheHookCannotSendAreRefused (flag side):
// --on-change-signal 0 is refused by Validate, naming that flag.
func TestDefect11_01_SignalsTheHookCannotSendAreRefused(t *testing.T) {
	for _, sig := range []string{"0", "99", "-1"} {
		err := validateSignal(sig)
		want := `--on-change-signal: "` + sig + `" is not a signal`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("--on-change-signal %s: Validate() = %v, want %s...", sig, err, want)
		}
	}
}

// TestDefect11_02_MappingAndFlagsAcceptTheSameSignals: one table through
// the mapping file's on_change.signal and through --on-change-signal; both
// accept exactly the same signals.
func TestDefect11_02_MappingAndFlagsAcceptTheSameSignals(t *testing.T) {
	for _, tc := range []struct {
		sig string
		ok  bool
	}{
		{"PIPE", true}, {"SIGPIPE", true}, {"pipe", true}, {"HUP", true},
		{"1", true}, {"64", true}, {"65", false}, {"0", false}, {"BOOM", false},
	} {
		_, mapErr := mapping.Parse("m.yaml", []byte("on_change:\n  signal: \""+tc.sig+"\"\n  pidfile: /p\n"))
		flagErr := validateSignal(tc.sig)
		if (mapErr == nil) != tc.ok {
			t.Errorf("mapping signal: %q: accepted %v, want %v (%v)", tc.sig, mapErr == nil, tc.ok, mapErr)
		}
		if (flagErr == nil) != tc.ok {
			t.Errorf("--on-change-signal %q: accepted %v, want %v (%v)", tc.sig, flagErr == nil, tc.ok, flagErr)
		}
	}
}
