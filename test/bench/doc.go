// Package bench measures what reading a cached secret through a secretsfs
// mount costs, against baselines measured in the same run.
//
// BenchmarkOpenReadClose opens, reads and closes a cached 100-byte secret in
// a loop, through secretsfs in both serving modes, and the same loop on two
// baselines: a file on tmpfs (what the kernel alone costs) and a minimal
// go-fuse file (command minimalfs) with the same open flags and timeouts as
// each secretsfs mode (what any go-fuse filesystem costs). It reports the
// time per iteration of each and the ratios that the project's targets are
// about:
//
//   - kernel-cache/tmpfs: secretsfs --kernel-cache against tmpfs
//     (target: at most 1.5);
//   - per-open/minimal-directio: secretsfs's default mode against a
//     minimal go-fuse file answering OPEN with FOPEN_DIRECT_IO|FOPEN_NOFLUSH
//     and 1 s timeouts (target: at most 1.1);
//   - kernel-cache/minimal-noopen: secretsfs --kernel-cache against a
//     minimal go-fuse file that declines OPEN and FLUSH (ENOSYS) with 1 min
//     timeouts;
//   - per-open/minimal-keepcache: secretsfs's default mode against a
//     minimal go-fuse file answering OPEN with FOPEN_KEEP_CACHE|FOPEN_NOFLUSH,
//     whose reads between opens come from the page cache: what per-open
//     mode pays for every handle reading its own snapshot directly.
//
// Main decisions:
//   - Machines are noisy, so the benchmark never judges an absolute time:
//     it reports ratios against baselines measured in the same run, and
//     nothing fails on a ratio either.
//   - Each daemon is a separate process (the built secretsfs binary against
//     an in-process Secrets Manager emulator on loopback, and the minimalfs
//     binary), so the loop measures what a program on the machine sees, and
//     the test process never serves a mount it reads.
//   - The loop is syscall.Open(O_RDONLY), one syscall.Read into a 4096-byte
//     buffer, syscall.Close; every read is checked to return the expected
//     100 bytes. The six targets are measured in interleaved rounds (each
//     round starts at another target), so slow phases of the machine hit
//     them all; a target's figure is the median of its rounds, and a ratio
//     is the median of the ratios within each round.
//   - The files have the same depth on every target
//     (bench/secret/AWSCURRENT, secretsfs's layout for the stage of secret
//     "bench/secret"), so path walks cost the same.
//   - The emulator's call counters show that the daemons made no API call
//     during the measured loops: the figures are the cache's, not the
//     network's.
//
// TestBenchmarkHarness runs the whole harness with few iterations in the
// normal test run and checks what can be checked without timing.
package bench
