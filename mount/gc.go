package mount

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// daemonGCPercent is the daemon's GOGC unless its environment sets one: the
// heap may grow to 1.4 times what is live before a collection, instead of
// the runtime's default of twice. What is live is nearly all the cache and
// the tree, which change little once warm, so collections stay rare (the
// daemon allocates little between them) while the resident size drops by a
// quarter (README, Sizing and cost).
const daemonGCPercent = 40

// gcCalls are what tuneGC reads and sets, replaced in tests.
type gcCalls struct {
	lookupEnv    func(string) (string, bool)
	setGCPercent func(int) int
}

func systemGC() gcCalls {
	return gcCalls{lookupEnv: os.LookupEnv, setGCPercent: debug.SetGCPercent}
}

// tuneGC sets the collector's target to daemonGCPercent unless GOGC is in
// the environment: the user's word wins. GOMEMLIMIT, which the runtime
// reads itself, is left as it is (with it, the runtime collects sooner
// still as the heap nears the limit). Nil functions skip it.
func tuneGC(g gcCalls, log *slog.Logger) {
	if g.lookupEnv == nil || g.setGCPercent == nil {
		return
	}
	if v, ok := g.lookupEnv("GOGC"); ok {
		log.Debug("garbage collector target from the environment", "GOGC", v)
		return
	}
	g.setGCPercent(daemonGCPercent)
	log.Debug("garbage collector target", "GOGC", daemonGCPercent)
}
