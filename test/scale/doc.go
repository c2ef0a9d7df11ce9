// Package scale measures what secretsfs costs as the number of secrets
// grows (issue 12): N JSON secrets of about 1 KiB with 4 keys each, so 5
// files each in the default layout (AWSCURRENT and one file per key),
// named scale/gGGG/sNNNNN (100 secrets a directory).
//
// TestScale runs the built secretsfs binary as a separate process in
// listing mode (--list-interval 10s, the least allowed; --max-cache-size
// large enough to hold every secret) against the project's emulator on
// loopback, through a real FUSE mount, and reports for each N:
//
//   - the seconds from exec to serving, and to run `find MNT -type f` (the
//     find binary, a child process) on the cold mount, with the API calls
//     made meanwhile, by operation;
//   - warm open+read+close per file (the median of timed sweeps over every
//     file, after every file was read once) and its flatness: that figure
//     divided by the same on a reference mount of 100 secrets (a second
//     daemon, warm, alive through the whole test), swept next to it,
//     alternately first and second, reading as many files (the median of
//     the sweeps' ratios: a busy phase of the machine hits both). That raw
//     flatness compares unlike work: in the default per-open mode the
//     kernel trusts a name for 1 s, and the reference comes back to each of
//     its 500 files within that second (no LOOKUP), while a sweep of 5 000
//     files or more comes back to each after it expired (a LOOKUP per
//     open). So both mounts are also swept with every name expired (each
//     lap starting at least 1.2 s after the previous one started, the wait
//     spent reading through a held handle so the daemon stays busy): a
//     LOOKUP, an OPEN, a READ and a RELEASE per file on both; the flatness
//     of those figures is the one the target applies to;
//   - the daemon's RSS right after every file was read, its RSS after the
//     idle intervals below (the kernel has forgotten the names nobody used
//     for 3 s by then, and the daemon their nodes) and its peak RSS until
//     then (VmRSS and VmHWM of /proc/PID/status);
//   - with nothing changing, from the end of the second listing pass after
//     the reads: the API calls per list interval by operation,
//     the ListSecrets pages per listing pass (a pass is ceil(N/100) pages),
//     the listing passes per interval (a timing figure), and the daemon's
//     CPU (utime+stime of /proc/PID/stat) as a percentage of one core, as
//     CPU time per interval (what a listing pass costs: at another list
//     interval L the share of a core is that over L), and between the end
//     of one pass and the first page of the next (what the daemon costs
//     when it has nothing to do);
//   - after a rotation of 50 secrets (a new AWSCURRENT put through the
//     emulator for each, every key changed): the seconds until every file of
//     every one of them shows the new value, and the API calls meanwhile.
//
// Calls are the emulator's counters: every request it received, whatever
// the outcome; AWS would count them all. The table shows apart the SDK's
// retries among them (requests whose amz-sdk-request header says attempt 2
// or more: on a loaded machine, now and then a page answered 200 is asked
// again because the SDK failed to read the answer).
//
// It prints a table with the targets at N = 10 000 next to the
// figures. Timing figures are reported, not judged: the machine is noisy.
// Without SECRETSFS_SCALE it runs at N = 100 only (as `go test ./...` and CI
// do) and checks what holds whatever the timing: every file is found and
// reads its secret's bytes, every table cell is filled; and at N <= 1 000
// the targets that are counts, with the daemon's calls (first
// attempts; a retry in ten calls allowed): the cold find fetches values in
// batches of 20 per directory (about N/20 BatchGetSecretValue) with no
// DescribeSecret or GetSecretValue; with nothing changing, no call but
// ListSecrets, one page per 100 secrets per interval, and no two passes in
// one interval; a rotation of 50 secrets seen in every file within two
// list intervals (20 s), for at most 50 value calls and no DescribeSecret.
// The full run:
//
//	SECRETSFS_SCALE=100,1000,10000 go test -run 'TestScale$' -timeout 60m -v ./test/scale/
//
// It sweeps every file 3 times for the warm figure (once without
// SECRETSFS_SCALE); SECRETSFS_SCALE_SWEEPS=1 makes it quicker where a sweep
// takes minutes. SECRETSFS_SCALE_FLAGS adds flags to the daemons' command
// line (e.g. --no-mlock); their environment is the test's (e.g. GOGC,
// GOMEMLIMIT), without AWS settings.
//
// TestScaleFakeClient is the same idea with no FUSE and no network: a
// cache.Cache over cache/cachetest's fake client, with every value read:
// the Go heap per secret (HeapAlloc after a GC, less the fake client's call
// log; the fake answers with a copy of each value, as the SDK does), and
// the nanoseconds per cached GetValue over all N secrets divided by the same
// over a reference cache of 1 000 read as many times, in alternating rounds
// (the raw flatness). In the same rounds it measures a baseline, the
// smallest store in memory doing the same work (a map of N values of the
// same size, each read with a copy out, in the same order), at N and at
// 1 000: its flatness is what the memory hierarchy alone costs (a working
// set of hundreds of megabytes is read from main memory, not the
// processor's caches), and the cache's flatness divided by the baseline's
// (median of the rounds) is the figure the target applies to. It runs at 1 000 and 5 000 in `go test ./...`;
// SECRETSFS_SCALE_FAKE=1000,100000 is the run. The fs layer is not
// measured there: it has no entry point without a mount.
package scale
