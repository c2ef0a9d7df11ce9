package emutest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secretsfs/secretsfs/test/emulator"
)

// LagClock is an emulator clock running behind the real time by a lag
// (emulator.WithClock). The credentials STS makes last a session
// (emulator.DefaultSessionDuration) from the emulator's now: with a lag,
// a client's SDK, on the real clock, sees them expire sooner, while the
// emulator still honours them. SetCredentialTTL sets the lag for that.
type LagClock struct{ lag atomic.Int64 }

// Now is the real time less the lag.
func (c *LagClock) Now() time.Time { return time.Now().Add(-time.Duration(c.lag.Load())) }

// SetCredentialTTL makes the STS credentials made from now on expire d
// after they are made, on the real clock.
func (c *LagClock) SetCredentialTTL(d time.Duration) {
	c.lag.Store(int64(emulator.DefaultSessionDuration - d))
}

// STSCall is an AssumeRoleWithWebIdentity request: the role and token.
type STSCall struct{ Role, Token string }

// STSRecorder serves the emulator and records the role and web identity
// token of every STS (query protocol) request, so that a test can tell
// which of a pod's tokens a client sent. The emulator answers everything.
type STSRecorder struct {
	Emu *emulator.Emulator

	mu    sync.Mutex
	calls []STSCall // guarded by mu
}

func (s *STSRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == "" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == emulator.OpAssumeRoleWithWebIdentity {
			s.mu.Lock()
			s.calls = append(s.calls, STSCall{Role: form.Get("RoleArn"), Token: form.Get("WebIdentityToken")})
			s.mu.Unlock()
		}
	}
	s.Emu.ServeHTTP(w, r)
}

// Calls returns the AssumeRoleWithWebIdentity requests so far, in order.
func (s *STSRecorder) Calls() []STSCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]STSCall(nil), s.calls...)
}
