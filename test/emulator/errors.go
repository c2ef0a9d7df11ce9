package emulator

import (
	"fmt"
	"net/http"
)

// Error type names the service returns, as they appear in "__type".
const (
	ErrResourceNotFound           = "ResourceNotFoundException"
	ErrInvalidRequest             = "InvalidRequestException"
	ErrInvalidParameter           = "InvalidParameterException"
	ErrResourceExists             = "ResourceExistsException"
	ErrLimitExceeded              = "LimitExceededException"
	ErrDecryptionFailure          = "DecryptionFailure"
	ErrEncryptionFailure          = "EncryptionFailure"
	ErrInternalServiceError       = "InternalServiceError"
	ErrInvalidNextToken           = "InvalidNextTokenException"
	ErrAccessDenied               = "AccessDeniedException"
	ErrThrottling                 = "ThrottlingException"
	ErrValidation                 = "ValidationException"
	ErrSerialization              = "SerializationException"
	ErrUnknownOperation           = "UnknownOperationException"
	ErrMissingAuthenticationToken = "MissingAuthenticationTokenException"
	ErrIncompleteSignature        = "IncompleteSignatureException"
	ErrServiceUnavailable         = "ServiceUnavailable"
	// Authentication errors, with an IAM model: an unknown access key or a
	// session token that is not the key's; a signature that does not
	// verify; temporary credentials past their expiration (also the code
	// of STS and the Pod Identity endpoint for an expired web identity
	// token).
	ErrUnrecognizedClient = "UnrecognizedClientException"
	ErrInvalidSignature   = "InvalidSignatureException"
	ErrExpiredToken       = "ExpiredTokenException"
)

// statusOf gives the HTTP status the service answers an error type with.
// Server-side faults are 5xx; every client error, throttling included, is
// 400.
func statusOf(code string) int {
	switch code {
	case ErrInternalServiceError:
		return http.StatusInternalServerError
	case ErrServiceUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// Error is an error the emulator answers a request with. The in-process
// methods of [Emulator] return it too, so callers can check Code.
type Error struct {
	// Code is the service's error type, e.g. "ResourceNotFoundException".
	Code string
	// Message is the human-readable text; it never contains a secret value.
	Message string
	// Status is the HTTP status the error is sent with.
	Status int
}

// Error implements the error interface.
func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

func newError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: statusOf(code)}
}

// Messages of the errors the service sends, as recorded from it where known.
func errSecretNotFound() *Error {
	return newError(ErrResourceNotFound, "Secrets Manager can't find the specified secret.")
}

func errMarkedForDeletion() *Error {
	return newError(ErrInvalidRequest, "You can't perform this operation on the secret because it was marked for deletion.")
}

// validationError formats a model-constraint violation the way the service
// does. The offending value is never echoed: it may be a secret.
func validationError(member, constraint string) *Error {
	return newError(ErrValidation, "1 validation error detected: Value at '%s' failed to satisfy constraint: %s", member, constraint)
}
