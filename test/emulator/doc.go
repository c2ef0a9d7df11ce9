// Package emulator is an in-memory emulator of AWS Secrets Manager that
// speaks the service's real wire protocol, so that the real AWS SDK and the
// AWS CLI can be pointed at it and cannot tell it from the service for the
// operations it implements.
//
// # Protocol
//
// Requests are AWS JSON 1.1: POST / with the header
// "X-Amz-Target: secretsmanager.<Operation>" and a JSON body. Responses carry
// the members the service sends, with timestamps as epoch seconds and blobs
// as standard base64. Errors carry the service's error type in "__type" and
// the X-Amzn-ErrorType header and the service's HTTP status (400 for client
// errors, 500 for InternalServiceError), so aws-sdk-go-v2 turns them into its
// typed exceptions. A request without a SigV4 Authorization header is refused
// with MissingAuthenticationTokenException, as the service does; the
// signature itself is not checked, so any access key works.
//
// Implemented operations: CreateSecret, GetSecretValue, DescribeSecret,
// ListSecrets, ListSecretVersionIds, BatchGetSecretValue, PutSecretValue,
// UpdateSecret, UpdateSecretVersionStage, DeleteSecret, RestoreSecret,
// RotateSecret, TagResource and UntagResource. Any other target is answered
// with UnknownOperationException.
//
// # Rules
//
// Secrets, versions and staging labels follow the service's rules: a label
// is on at most one version of a secret; moving AWSCURRENT gives AWSPREVIOUS
// to the version it left; versions without labels are deprecated (hidden
// from VersionIdsToStages and, unless asked for, from ListSecretVersionIds;
// the oldest beyond 100 are dropped); ClientRequestToken makes creates and
// puts idempotent; a secret scheduled for deletion answers
// InvalidRequestException to reads and writes but still describes, and is
// removed once the injected clock passes its deletion date. A SecretId may be
// a name, a full ARN or a partial ARN (the ARN without its 6-character
// suffix). Violations of the model's constraints (lengths, charsets, ranges)
// are answered with ValidationException and the service's "1 validation
// error detected" wording; messages never contain secret values.
//
// RotateSecret needs no Lambda function: the built-in rotation creates an
// AWSPENDING version (a JSON object keeps its keys and gets a new
// "password"; any other string is replaced by a new password; a binary
// secret gets new random bytes), then moves AWSCURRENT to it, so that the old
// version becomes AWSPREVIOUS. NextRotationDate follows RotationRules
// (AutomaticallyAfterDays, or a "rate(N days)" / "rate(N hours)" schedule).
//
// # Use from tests and programs
//
// [New] builds an [Emulator], which is an http.Handler; [Start] serves it on
// a loopback listener and returns a [Server] with its URL. The emulator's
// test controls are Go methods: per-operation call counters
// ([Emulator.Calls], [Emulator.WaitForCalls]; [Emulator.RetryCounts], in
// process only, tells which of them were the SDK's retries), fault injection
// ([Emulator.InjectFault]: error type, count, latency, dropped connection)
// and a switch that really closes the listening socket for a while
// ([Server.RefuseConnections]). The same controls are served over HTTP under
// the path prefix [ControlPrefix], which the AWS protocol never uses, for
// tests whose emulator runs in another process; [ControlClient] calls them.
// Secrets are created in-process with [Emulator.CreateSecret],
// [Emulator.PutSecretValue] and [Emulator.RotateSecret], or preloaded from a
// JSON seed file ([LoadSeedFile], [Emulator.Seed]).
//
// [RunCommand] is the "secretsfs emulator" command: it starts a server,
// prints its URL and serves until its context is cancelled.
//
// All state is in memory and guarded by one mutex; dates come from an
// injected [Clock], so recovery windows and rotation schedules are tested
// without sleeping.
//
// # Scale
//
// The emulator holds tens of thousands of secrets at a cost per call that
// does not grow with their number: a secret is found through a map (only
// the secrets scheduled for deletion are looked at to purge expired ones),
// and a listing's filtered, sorted selection is kept until the next change,
// so paging through N secrets selects and sorts them once, not once a page.
package emulator
