package mount

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// t0 is the fake clocks' start.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// emuFixture is emutest's emulator fixture under the names mount's tests use.
type emuFixture struct {
	fx     *emutest.Fixture
	emu    *emulator.Emulator
	srv    *emulator.Server
	client *secretsmanager.Client
}

func newEmu(t *testing.T) *emuFixture {
	f := emutest.New(t)
	return &emuFixture{fx: f, emu: f.Emu, srv: f.Server, client: f.Client}
}

// create makes a string secret with tags given as key, value pairs.
func (f *emuFixture) create(t *testing.T, name, value string, tags ...string) string {
	t.Helper()
	return f.fx.Create(t, name, value, tags...)
}

// isolateAWS keeps the developer's AWS settings out of a test.
func isolateAWS(t *testing.T) { emutest.IsolateAWS(t) }

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

func names(refs []sfs.SecretRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}
