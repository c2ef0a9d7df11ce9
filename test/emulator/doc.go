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
// with MissingAuthenticationTokenException, as the service does. Without an
// IAM model the signature itself is not checked, so any access key works.
//
// The same endpoint also answers STS AssumeRoleWithWebIdentity (the AWS
// query protocol: a form-encoded POST with Action and Version=2011-06-15,
// an XML answer or XML ErrorResponse) and the EKS Pod Identity agent's
// credentials endpoint ([PodIdentityPath]: GET with the pod's
// service-account token as the Authorization header, a JSON answer
// {AccessKeyId, SecretAccessKey, Token, AccountId, Expiration}).
//
// # Identities and permissions
//
// An [IAM] model ([Emulator.SetIAM], or "IAM" in the seed file) makes the
// emulator check who calls and what they may read, over the wire, as AWS
// does. Trusted OIDC issuers are given by URL and public keys (a JWKS);
// test/kubetoken makes Kubernetes service-account tokens signed by such an
// issuer. STS verifies a token with go-jose (signature with the key its
// "kid" names, "iss" a trusted issuer, "aud" sts.amazonaws.com, "nbf" and
// "exp" on the emulator's clock) and the role's trust (issuer and
// subject), then hands out temporary credentials (ASIA...) valid for
// DurationSeconds on the emulator's clock; refusals are
// InvalidIdentityToken, ExpiredTokenException and AccessDenied (403). The
// Pod Identity endpoint verifies a token of audience pods.eks.amazonaws.com
// the same way and finds the role by the token's namespace and service
// account ([PodIdentityAssociation]); refusals are JSON {"code",
// "message"} with 400 (InvalidTokenException, ExpiredTokenException,
// InvalidRequestException) or 404 (ResourceNotFoundException: no
// association). Static keys ([AccessKey]) have policies too, so a test can
// give a node a key that may read nothing.
//
// With a model, every Secrets Manager request's SigV4 signature is
// recomputed with aws-sdk-go-v2's signer over the received request (the
// headers it signed, its date, scope and body) and compared: an unknown
// key or a session token that is not the key's is
// UnrecognizedClientException, a wrong signature (or scope service)
// InvalidSignatureException, an expired session ExpiredTokenException.
// Each call is then allowed by the caller's [Policy] or refused with the
// service's AccessDeniedException ("User: ARN is not authorized to
// perform: secretsmanager:ACTION on resource: ID because no
// identity-based policy allows the secretsmanager:ACTION action");
// BatchGetSecretValue reports the secrets it may not read in Errors.
// [Emulator.CallsByIdentity] counts calls by role (or user) besides the
// counts by operation. The request's date is not compared with the
// emulator's clock, which tests move freely.
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
// ([Emulator.InjectFault]: error type, count, latency, dropped connection;
// for STS and the Pod Identity endpoint too, when named)
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
