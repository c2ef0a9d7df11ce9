// Package mapping reads and checks a secretsfs mapping file (--config FILE):
// YAML that places secrets at chosen paths of the mount, in chosen formats,
// or renders files from Go templates, and that can also give the mount's
// settings.
//
// It knows nothing of FUSE or of the AWS SDK. Parse turns a file into a
// Config whose Files say, each, where the file goes, what it depends on
// (File.SecretIDs) and how its content is made from secret values
// (File.Render, given a function that fetches them). Everything that can be
// checked without Secrets Manager is checked here, and each problem is
// reported as "FILE:LINE: FIELD: what is wrong; the fix". Error messages
// never contain a secret value: values are only read while rendering, and a
// rendering error is worded from the template's own text (its line, the
// action, the arguments it wrote as literals) and from messages known to
// hold no value; an argument the template computed is never quoted
// (templateerr.go).
//
// Decisions:
//   - The YAML is walked as a node tree (go.yaml.in/yaml/v3) rather than
//     decoded into structs, so that every error can name its line and every
//     unknown field is refused with the list of known ones.
//   - Top-level keys other than files, objects and on_change are settings:
//     a mount flag's name with "_" for "-" (refresh_interval: 1m). Which names
//     exist is decided by the caller, who knows the flags; a flag given on
//     the command line or in the environment wins over the file.
//   - A key path is dotted (db.primary.password); a segment holding a dot or a
//     double quote is written in double quotes with JSON escapes
//     (db."primary.host"), which is also JMESPath's quoted identifier, so the
//     CSI provider's jmesPath entries use the same parser in a stricter mode
//     (unquoted segments must be identifiers, anything else is refused).
//     A segment that is a number indexes a JSON array.
//   - A mapping or template file is at most MaxFileSize (1 MiB); a YAML
//     error is located by the line the parser was reading when it failed
//     (decodeYAML), not by parsing every prefix of the file.
//   - A template's secret ids must be quoted strings in the template text, so
//     that its dependencies are known before it runs: `check` can verify them
//     and a change of any of them re-renders the file.
package mapping
