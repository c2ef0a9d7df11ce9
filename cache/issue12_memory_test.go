package cache

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue12_Memory_AListingThatChangesNothingKeepsTheEntries: in listing
// mode every secret is listed once per list interval. A pass that says what
// the cache already holds (the same versions and stages, name, ARN) keeps
// each entry's stage map and strings: it allocates, per secret, little
// beyond what the client's answer itself took, and no new map per secret
// (which a daemon of 10 000 secrets made every few seconds, and whose
// strings kept blocks of the SDK's answers alive).
func TestIssue12_Memory_AListingThatChangesNothingKeepsTheEntries(t *testing.T) {
	const n = 100 // one page: no pacing between pages
	e := newEnv(t, nil)
	names := e.putMany(n)
	e.list(ListFilter{})
	for _, name := range names {
		e.str(name)
	}
	// What the fake's answer of one page costs alone.
	answer := testutil.BytesPerOp(20, func() {
		if _, err := e.client.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{}); err != nil {
			t.Fatal(err)
		}
	})
	pass := testutil.BytesPerOp(20, func() { e.list(ListFilter{}) })
	per := (pass - answer) / n
	t.Logf("a listing pass that changes nothing allocates %.0f bytes per secret besides the answer (%.0f per secret)", per, answer/n)
	if per > 700 {
		t.Fatalf("a listing pass that changes nothing allocates %.0f bytes per secret besides the answer: it rebuilds the entries' state", per)
	}
	e.calls(0, n) // the passes asked no value again
}
