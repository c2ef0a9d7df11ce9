package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

func (w *world) createTagged(name, value string, tags ...string) {
	w.t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for i := 0; i+1 < len(tags); i += 2 {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(tags[i]), Value: aws.String(tags[i+1])})
	}
	if _, err := w.sm.CreateSecret(w.ctx, in); err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
}

func (w *world) untag(name string, keys ...string) {
	w.t.Helper()
	if _, err := w.sm.UntagResource(w.ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(name), TagKeys: keys}); err != nil {
		w.t.Fatalf("untag %s: %v", name, err)
	}
}

// statErrno returns the errno of a stat (0 when it succeeds).
func statErrno(p string) syscall.Errno {
	_, err := os.Stat(p)
	return errnoOf(err)
}

// With --prefix and --tag, a secret outside them is never served, not even
// by its path, and one that leaves the scope disappears from the listing
// and from its path, and stays gone after SIGHUP.
func TestDefect9_04_ScopeHoldsForPathLookups(t *testing.T) {
	w := newWorld(t)
	w.createTagged("team/listed", "listed-value", "team", "a")
	w.createTagged("team/untagged", "untagged-value")
	w.createTagged("other/tagged", "other-value", "team", "a")
	d := w.startDaemon("--prefix", "team/", "--tag", "team=a", "--list-interval", "10s")

	// What ls team shows; nothing once no secret makes the directory
	// (also when it goes while being listed).
	listing := func() []string {
		names, err := testutil.ReadDirNames(d.path("team"))
		if errnoOf(err) == syscall.ENOENT {
			return nil
		}
		if err != nil {
			t.Fatalf("ls team: %v", err)
		}
		return names
	}
	if got := listing(); !slices.Equal(got, []string{"listed/"}) {
		t.Fatalf("ls team = %v, want [listed/]", got)
	}
	for _, p := range []string{"team/untagged/AWSCURRENT", "team/untagged", "other/tagged/AWSCURRENT", "other"} {
		if got := statErrno(d.path(p)); got != syscall.ENOENT {
			t.Errorf("stat %s: %v, want ENOENT", p, got)
		}
	}
	if got := listing(); !slices.Equal(got, []string{"listed/"}) {
		t.Fatalf("ls team after the lookups = %v, want [listed/]", got)
	}
	if got := mustRead(t, d.path("team/listed/AWSCURRENT")); got != "listed-value" {
		t.Fatalf("team/listed = %q", got)
	}
	// A tagged secret the listing does not have yet is reachable by path.
	w.createTagged("team/late", "late-value", "team", "a")
	if got := mustRead(t, d.path("team/late/AWSCURRENT")); got != "late-value" {
		t.Fatalf("team/late = %q", got)
	}

	w.untag("team/listed", "team")
	w.untag("team/late", "team")
	gone := func() bool {
		return len(listing()) == 0 &&
			statErrno(d.path("team/listed/AWSCURRENT")) == syscall.ENOENT &&
			statErrno(d.path("team/late/AWSCURRENT")) == syscall.ENOENT
	}
	eventually(t, 30*time.Second, "the untagged secrets gone from the listing and their paths", gone)

	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the forced refresh", func() bool {
		return strings.Contains(d.Stderr.String(), "SIGHUP: forced refresh done")
	})
	if !gone() {
		t.Fatalf("after SIGHUP: ls team = %v, team/listed %v, team/late %v", listing(),
			statErrno(d.path("team/listed/AWSCURRENT")), statErrno(d.path("team/late/AWSCURRENT")))
	}
	if _, err := read(d.path("team/untagged/AWSCURRENT")); errnoOf(err) != syscall.ENOENT {
		t.Fatalf("team/untagged after SIGHUP: %v, want ENOENT", err)
	}
}

// A user who stats 1100 invented names neither flushes the cache (an outage
// afterwards still serves every secret read before) nor makes more
// DescribeSecret calls than the documented rate: 50 at once, then 10 a
// second.
func TestDefect9_05_InventedNamesDoNotFlushTheCache(t *testing.T) {
	w := newWorld(t)
	real := []string{"app/a", "app/b", "app/c"}
	for _, n := range real {
		w.createString(n, "value of "+n)
	}
	d := w.startDaemon()
	for _, n := range real {
		if got := mustRead(t, d.path(n+"/AWSCURRENT")); got != "value of "+n {
			t.Fatalf("%s = %q", n, got)
		}
	}

	describes := w.emu.Calls(emulator.OpDescribeSecret)
	start := time.Now()
	for i := range 1100 {
		if got := statErrno(d.path(fmt.Sprintf("made-up-%d", i))); got != syscall.ENOENT {
			t.Fatalf("stat made-up-%d: %v, want ENOENT", i, got)
		}
	}
	elapsed := time.Since(start)
	if n, limit := w.emu.Calls(emulator.OpDescribeSecret)-describes, 50+int(10*elapsed.Seconds())+1; n > limit {
		t.Fatalf("%d DescribeSecret calls for 1100 invented names in %v, want at most %d", n, elapsed, limit)
	}

	w.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: emulator.ErrInternalServiceError})
	for _, n := range real {
		if got, err := read(d.path(n + "/AWSCURRENT")); err != nil || got != "value of "+n {
			t.Errorf("%s during the outage: %q, %v", n, got, err)
		}
	}
}
