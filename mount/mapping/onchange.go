package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OnChange is what to do when a file's content changes: run Command, or
// send Signal to the process whose pid is in PIDFile. It is the one spec of
// a change hook, whether it comes from a mapping file's on_change or from
// the --on-change-* flags. Runs are coalesced per hook: one run once
// Debounce has passed without another change of a file the hook covers,
// naming every file changed since its last run.
type OnChange struct {
	// Command is the program and its arguments, run without a shell; when
	// Shell is set it has one element, run with /bin/sh -c. Nil means no
	// command was given; a non-nil empty Command was given empty.
	Command []string
	Shell   bool
	// Signal is a signal as ParseSignal reads it (HUP, SIGHUP, 1).
	Signal  string
	PIDFile string
	// Debounce is how long a file must stay unchanged before the hook runs;
	// zero means DefaultDebounce.
	Debounce time.Duration
	// Line is the on_change's line in the mapping file; 0 for the flags.
	Line int
}

// DefaultDebounce is the on_change debounce when none is given.
const DefaultDebounce = time.Second

// ParseSignal reads a signal given as a name, with or without SIG and in
// any case (HUP, SIGHUP, hup), or as a number from 1 to 64: the signals a
// hook can send.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal; give a name such as HUP or USR1, or a number from 1 to 64", s)
}

// Problem is what is wrong with a spec: Field is the field it concerns
// ("command", "signal", "pidfile", "debounce"), or "" for the spec as a
// whole, and Message says what is wrong and the fix.
type Problem struct {
	Field   string
	Message string
}

// Problems checks an on_change's fields. Its messages refer to the fields
// through name (e.g. "signal:" in a mapping file, "--on-change-signal" for
// a flag); the caller places each problem, naming its Field its own way.
func (oc *OnChange) Problems(name func(field string) string) []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	command, signal, pidFile := name("command"), name("signal"), name("pidfile")
	switch {
	case oc.Command == nil && oc.Signal == "":
		add("", "give %s or %s with %s", command, signal, pidFile)
	case oc.Command != nil && oc.Signal != "":
		add("", "give %s or %s, not both", command, signal)
	case oc.Signal != "" && oc.PIDFile == "":
		add("", "%s needs %s, the file holding the pid to signal", signal, pidFile)
	case oc.Signal == "" && oc.PIDFile != "":
		add("", "%s goes with %s", pidFile, signal)
	}
	if oc.Command != nil && (len(oc.Command) == 0 || oc.Command[0] == "") {
		add("command", "is empty; give a command line, or a list [program, arg, ...]")
	}
	if oc.Signal != "" {
		if _, err := ParseSignal(oc.Signal); err != nil {
			add("signal", "%v", err)
		}
	}
	if oc.Debounce < 0 {
		add("debounce", "is %v; give a duration of 0 or more, e.g. 2s", oc.Debounce)
	}
	return out
}
