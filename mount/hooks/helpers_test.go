package hooks

import (
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}
