package mount

import (
	"errors"
	"log/slog"

	"golang.org/x/sys/unix"
)

// hygieneCalls are the system calls of memory hygiene, replaced in tests.
type hygieneCalls struct {
	mlockall       func(flags int) error // mlockall(2)
	disableDumping func() error
	raceDetector   bool
}

// lockFlags are mlockall's flags: every page mapped now and later, each
// locked when first used (MCL_ONFAULT, Linux 4.4) rather than at once, so
// that the Go runtime's reservations it never touches are neither locked
// nor resident: memory locked is memory used, and --no-mlock changes the
// resident size little.
const lockFlags = unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT

func systemHygiene() hygieneCalls {
	return hygieneCalls{
		mlockall:       unix.Mlockall,
		disableDumping: func() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) },
		raceDetector:   raceEnabled,
	}
}

// hygieneOutcome is what applyHygiene achieved, for the metrics.
type hygieneOutcome struct {
	memoryLocked bool // mlockall succeeded
}

// applyHygiene keeps secrets out of swap and core dumps as far as the system
// allows: the process is made non-dumpable (no core dump, no ptrace by other
// users' processes, /proc/PID/mem closed to them) and, unless noMlock, its
// memory is locked so that it is never swapped out. Neither failure is
// fatal; each is a warning saying how to fix it, and whether memory is
// locked is reported (secretsfs_memory_locked).
func applyHygiene(h hygieneCalls, noMlock bool, log *slog.Logger) hygieneOutcome {
	if err := h.disableDumping(); err != nil {
		log.Warn("could not disable core dumps (PR_SET_DUMPABLE); a crash may dump secrets to disk", "error", err)
	}
	switch {
	case noMlock:
		log.Info("memory not locked (--no-mlock): secrets may be swapped to disk")
	case h.raceDetector:
		// The race detector maps terabytes of shadow memory.
		log.Warn("memory not locked: this binary is built with the race detector")
	default:
		err := h.mlockall(lockFlags)
		if errors.Is(err, unix.EINVAL) {
			// A kernel before 4.4 knows no MCL_ONFAULT: lock every page
			// mapped, used or not.
			log.Debug("mlockall refuses MCL_ONFAULT (a kernel before 4.4); locking every mapped page")
			err = h.mlockall(lockFlags &^ unix.MCL_ONFAULT)
		}
		if err != nil {
			log.Warn("could not lock memory (mlockall); secrets may be swapped to disk. Run as root or with CAP_IPC_LOCK and a memlock limit large enough (systemd: LimitMEMLOCK=infinity), or pass --no-mlock to silence this", "error", err)
			return hygieneOutcome{}
		}
		log.Debug("memory locked (mlockall)")
		return hygieneOutcome{memoryLocked: true}
	}
	return hygieneOutcome{}
}

// Harden does for a program that runs a Daemon itself (the CSI driver)
// what Run does for its own process: secrets are kept out of core dumps
// and, unless noMlock, out of swap (applyHygiene), and the garbage
// collector's target is set (tuneGC). Failures are warnings in log.
func Harden(noMlock bool, log *slog.Logger) {
	applyHygiene(systemHygiene(), noMlock, log)
	tuneGC(systemGC(), log)
}
