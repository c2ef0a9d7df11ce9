package mapping

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// How a template's failure is worded. A template can pass values it read
// to its functions ({{ key "prod/db" .password }}) and to text/template's
// own (index, slice, range), so an argument or a value in an error could
// be a secret. The rules:
//   - the place is text/template's: the template's line and column and the
//     action, as written in the template's text;
//   - a template function names an argument only where the call wrote it
//     as a literal ("AWSPREVIOUS", "db.password"); an argument computed
//     while running is shown as hidden;
//   - text/template's own messages are kept when they hold only the
//     template's text, type names and counts, reworded without the value
//     when they would quote one (range can't iterate over VALUE, index out
//     of range: N), and withheld when they are of an unknown shape.

// hidden stands for an argument the template computed.
const hidden = "[computed, not shown]"

// withheld replaces a reason of a shape not known to be free of values.
const withheld = "failed (the reason is not shown, as it may quote a value)"

// argShown tells whether a function's argument (0 for the first) was
// written as a literal in the template's text.
type argShown func(arg int) bool

// callError is a template function's failure. Its words name an argument
// only when shown says it is a literal of the call; Error, which knows no
// call, names none.
type callError struct {
	words func(shown argShown) string
}

func (e *callError) Error() string { return e.words(func(int) bool { return false }) }

// fixedError is a function's failure that names no argument.
func fixedError(msg string) error {
	return &callError{words: func(argShown) string { return msg }}
}

// refText names what a function read: the secret (always a literal: see
// parseTemplate) and the stage or version, its second argument.
func refText(ref Ref, shown argShown) string {
	what, sel := "", ""
	switch {
	case ref.VersionID != "":
		what, sel = "version", ref.VersionID
	case ref.Stage != "":
		what, sel = "stage", ref.Stage
	default:
		return fmt.Sprintf("secret %q", ref.SecretID)
	}
	if shown(1) {
		return fmt.Sprintf("secret %q %s %q", ref.SecretID, what, sel)
	}
	return fmt.Sprintf("secret %q %s %s", ref.SecretID, what, hidden)
}

// fetchError is a failed read. The store's message names the stage or
// version asked for, so it is kept only when that is a literal or absent
// from it; otherwise the failure is named by its kind.
func fetchError(ref Ref, err error) error {
	return &callError{words: func(shown argShown) string {
		text := err.Error()
		sel := ref.Stage + ref.VersionID // at most one is set
		if sel == "" || shown(1) || !mentions(text, sel) {
			return text
		}
		kind := "cannot be read"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			kind = "not found"
		case errors.Is(err, fs.ErrPermission):
			kind = "access denied"
		}
		return refText(ref, shown) + ": " + kind
	}}
}

// mentions reports whether text holds s, as it is or Go-quoted.
func mentions(text, s string) bool {
	q := strconv.Quote(s)
	return strings.Contains(text, s) || strings.Contains(text, q[1:len(q)-1])
}

// execError words an error of Execute: "SOURCE:LINE:COL: executing NAME at
// <ACTION>: REASON", the action as the template's text has it and the
// reason free of values (see the rules above).
func (t *Template) execError(err error) string {
	msg := err.Error()
	head := regexp.MustCompile(`^template: ` + regexp.QuoteMeta(t.name) + `:(\d+):(\d+): executing ("(?:[^"\\]|\\.)*") at <`)
	m := head.FindStringSubmatch(msg)
	if m == nil {
		// A failure of no action, e.g. an empty template; it names the
		// template.
		if rest, ok := strings.CutPrefix(msg, "template: "+t.name+": "); ok {
			return fmt.Sprintf("%s: %s", t.source, execReason(rest))
		}
		return fmt.Sprintf("%s: the template %s", t.source, withheld)
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	at := fmt.Sprintf("%s:%d:%d: executing %s", t.source, line+t.base, col, m[3])
	rest := msg[len(m[0]):]
	// The action is a node of the template at that place: the longest
	// whose text starts the rest, and the deepest of those (several nodes
	// start at one place: a pipeline, its first command and its first
	// word).
	var node parse.Node
	action := ""
	for _, n := range t.nodesAt(line, col) {
		if s := n.String(); strings.HasPrefix(rest, s+">: ") && (node == nil || len(s) >= len(action)) {
			node, action = n, s
		}
	}
	if node == nil {
		return at + ": " + withheld
	}
	reason := rest[len(action)+len(">: "):]
	var ce *callError
	if errors.As(err, &ce) {
		fn, tail, _ := strings.Cut(strings.TrimPrefix(reason, "error calling "), ": ")
		if !strings.HasPrefix(reason, "error calling ") || tail != ce.Error() {
			return fmt.Sprintf("%s at <%s>: %s", at, action, withheld)
		}
		reason = "error calling " + fn + ": " + ce.words(literalArgs(node, fn))
	} else {
		reason = execReason(reason)
	}
	return fmt.Sprintf("%s at <%s>: %s", at, action, reason)
}

// nodesAt returns the nodes that start at a line (1-based) and column
// (0-based, as text/template counts) of the template's text.
func (t *Template) nodesAt(line, col int) []parse.Node {
	starts := []int{0} // of each line
	for i := 0; i < len(t.text); i++ {
		if t.text[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	var out []parse.Node
	t.eachNode(func(_ *template.Template, n parse.Node) {
		pos := int(n.Position())
		l := sort.Search(len(starts), func(i int) bool { return starts[i] > pos })
		if l == line && pos-starts[l-1] == col {
			out = append(out, n)
		}
	})
	return out
}

// literalArgs tells which arguments of the call of fn at node are written
// as literals; none when node is not that call.
func literalArgs(node parse.Node, fn string) argShown {
	cmd, ok := node.(*parse.CommandNode)
	if !ok || len(cmd.Args) == 0 {
		return func(int) bool { return false }
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); !ok || id.Ident != fn {
		return func(int) bool { return false }
	}
	return func(arg int) bool {
		if arg+1 >= len(cmd.Args) {
			return false // piped in
		}
		_, lit := cmd.Args[arg+1].(*parse.StringNode)
		return lit
	}
}

// reasonShape is a shape of text/template's messages: kept as it is when
// reword is empty, else replaced by reword (regexp expansion).
type reasonShape struct {
	re     *regexp.Regexp
	reword string
}

func shapes(keep []string, reword [][2]string) []reasonShape {
	var out []reasonShape
	for _, k := range keep {
		out = append(out, reasonShape{re: regexp.MustCompile(`^(?:` + k + `)$`)})
	}
	for _, r := range reword {
		out = append(out, reasonShape{re: regexp.MustCompile(`^(?:` + r[0] + `)$`), reword: r[1]})
	}
	return out
}

// execShapes are text/template's own execution errors. Those kept hold
// only the template's text (field names, commands, template names), type
// names and counts of arguments; the others would quote a value or a number
// computed from one.
var execShapes = shapes([]string{
	`wrong number of args for \S+: want (at least )?\d+ got \d+`,
	`map has no entry for key ".*"`,
	`nil data; no entry for key ".*"`,
	`can't evaluate field \S+ in type .+`,
	`nil pointer evaluating .+`,
	`wrong type for value; expected .+; got .+`,
	`invalid value; expected .+`,
	`can't give argument to non-function .+`,
	`can't evaluate command ".*"`,
	`".*" is not a defined function`,
	`template ".*" not defined`,
	`".*" is an incomplete or empty template`,
	`exceeded maximum template depth \(\d+\)`,
	`\S+ has arguments but cannot be invoked as function`,
	`\S+ is not a method but has arguments`,
	`\S+ is an unexported field of struct type .+`,
	`can't handle .+ for arg of type .+`,
	`expected (bool|string|integer|unsigned integer|float|complex); found .+`,
	`dereference of nil pointer of type .+`,
	`cannot assign nil to .+`,
	`indirection through explicit nil in .+`,
	`undefined variable: \S+`,
}, [][2]string{
	{`if/with can't use .*`, "if/with can't use the value"},
	{`range can't iterate over .*`, "range can't iterate over the value"},
	{`can't use .* iterate over more than one variable`, "can't use the value to iterate over more than one variable"},
	{`range over send-only channel .*`, "range over a send-only channel"},
})

// callShapes are the errors of text/template's functions (index, slice,
// len, eq, ...), after "error calling NAME: ".
var callShapes = shapes([]string{
	`(arg \d+: )?value has type .+; should be .+`,
	`(arg \d+: )?value is nil; should be of type .+`,
	`cannot index slice/array with (nil|type .+)`,
	`index of (untyped nil|nil pointer)`,
	`can't index item of type .+`,
	`slice of (untyped nil|nil pointer)`,
	`too many slice indexes: \d+`,
	`cannot 3-index slice a string`,
	`can't slice item of type .+`,
	`len of (nil pointer|type .+)`,
	`call of nil`,
	`non-function \S+ of type .+`,
	`wrong number of args for \S+: got \d+ want (at least )?\d+`,
	`invalid type for comparison`,
	`missing argument for comparison`,
	`incompatible types for comparison: .+ and .+`,
}, [][2]string{
	{`index out of range: .*|reflect: \w+ index out of range`, "index out of range"},
	{`invalid slice index: .*`, "invalid slice index"},
	{`non-comparable types? .*`, "non-comparable values"},
})

var errorCalling = regexp.MustCompile(`^error calling (\S+): `)

// execReason keeps, rewords or withholds a reason text/template gave.
func execReason(reason string) string {
	table, prefix := execShapes, ""
	if m := errorCalling.FindStringSubmatch(reason); m != nil {
		table, prefix, reason = callShapes, m[0], reason[len(m[0]):]
	}
	for _, s := range table {
		if s.re.MatchString(reason) {
			if s.reword == "" {
				return prefix + reason
			}
			return prefix + s.reword
		}
	}
	return prefix + withheld
}
