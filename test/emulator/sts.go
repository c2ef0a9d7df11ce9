package emulator

import (
	"encoding/xml"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// OpAssumeRoleWithWebIdentity is the STS action the emulator implements;
// its calls are counted under this name.
const OpAssumeRoleWithWebIdentity = "AssumeRoleWithWebIdentity"

// stsVersion is the API version of STS's query protocol.
const stsVersion = "2011-06-15"

// stsNamespace is the XML namespace of STS's answers.
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// STS error codes, as STS sends them.
const (
	ErrSTSInvalidIdentityToken = "InvalidIdentityToken"
	ErrSTSAccessDenied         = "AccessDenied"
	ErrSTSValidation           = "ValidationError"
	ErrSTSInvalidAction        = "InvalidAction"
	ErrSTSMissingParameter     = "MissingParameter"
)

// endpointError is an error STS or the Pod Identity endpoint answers with.
type endpointError struct {
	code, message string
	status        int
}

// isQueryRequest reports whether r is an AWS query protocol request (STS):
// a form-encoded POST without an X-Amz-Target.
func isQueryRequest(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// roleSessionNamePattern is the model's constraint on RoleSessionName.
var roleSessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// serveSTS answers an STS query request. Only AssumeRoleWithWebIdentity is
// implemented; like STS, it needs no signature.
func (e *Emulator) serveSTS(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		e.writeSTSError(w, &endpointError{ErrSTSValidation, "Could not read the request body.", http.StatusBadRequest})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		e.writeSTSError(w, &endpointError{ErrSTSValidation, "The request body is not form-encoded.", http.StatusBadRequest})
		return
	}
	action := form.Get("Action")
	if action != "" {
		e.count(action, isRetry(r))
	}
	if action != OpAssumeRoleWithWebIdentity || form.Get("Version") != stsVersion {
		e.writeSTSError(w, &endpointError{ErrSTSInvalidAction, "Could not find operation " + action + " for version " + form.Get("Version") + " (this emulator implements AssumeRoleWithWebIdentity, version " + stsVersion + ").", http.StatusBadRequest})
		return
	}
	e.countIdentity(form.Get("RoleArn"), action)
	if e.playFault(w, r, action, "", func(code, msg string, status int) {
		e.writeSTSError(w, &endpointError{code, msg, status})
	}) {
		return
	}
	out, serr := e.assumeRoleWithWebIdentity(form)
	if serr != nil {
		e.writeSTSError(w, serr)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", out.ResponseMetadata.RequestID)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out)
	e.log.Debug("request", "op", action, "status", http.StatusOK)
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleWithWebIdentityResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
	Result  struct {
		SubjectFromWebIdentityToken string `xml:"SubjectFromWebIdentityToken"`
		Audience                    string `xml:"Audience"`
		AssumedRoleUser             struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Credentials stsCredentials `xml:"Credentials"`
		Provider    string         `xml:"Provider"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
	ResponseMetadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

// stsDate formats a date as STS does.
func stsDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (e *Emulator) assumeRoleWithWebIdentity(form url.Values) (*assumeRoleWithWebIdentityResponse, *endpointError) {
	for _, p := range []string{"RoleArn", "RoleSessionName", "WebIdentityToken"} {
		if !form.Has(p) {
			return nil, &endpointError{ErrSTSMissingParameter, "The request must contain the parameter " + p, http.StatusBadRequest}
		}
	}
	roleARN, sessionName, token := form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("WebIdentityToken")
	if !roleSessionNamePattern.MatchString(sessionName) {
		return nil, &endpointError{ErrSTSValidation, "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64", http.StatusBadRequest}
	}
	if n := len(token); n < 4 || n > 20000 {
		return nil, &endpointError{ErrSTSValidation, "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000", http.StatusBadRequest}
	}
	duration := DefaultSessionDuration
	if ds := form.Get("DurationSeconds"); ds != "" {
		n, err := strconv.Atoi(ds)
		if err != nil || n < 900 || time.Duration(n)*time.Second > maxSessionDuration {
			return nil, &endpointError{ErrSTSValidation, "1 validation error detected: Value '" + ds + "' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", http.StatusBadRequest}
		}
		duration = time.Duration(n) * time.Second
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	id, terr := verifyWebToken(e.iam, token, kubetoken.AudienceSTS, now)
	if terr != nil {
		if terr.problem == tokenExpired {
			return nil, &endpointError{ErrExpiredToken, terr.msg, http.StatusBadRequest}
		}
		return nil, &endpointError{ErrSTSInvalidIdentityToken, terr.msg, http.StatusBadRequest}
	}
	denied := &endpointError{ErrSTSAccessDenied, "Not authorized to perform sts:AssumeRoleWithWebIdentity", http.StatusForbidden}
	role, ok := e.iam.roles[roleARN]
	if !ok || role.TrustIssuer != id.issuer {
		return nil, denied
	}
	trusted := false
	for _, re := range role.subjects {
		trusted = trusted || re.MatchString(id.subject)
	}
	if !trusted {
		return nil, denied
	}
	maxDuration := time.Duration(role.MaxSessionDurationSeconds) * time.Second
	if maxDuration == 0 {
		maxDuration = DefaultSessionDuration
	}
	if duration > maxDuration {
		return nil, &endpointError{ErrSTSValidation, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", http.StatusBadRequest}
	}
	keyID, s, err := e.newSession(role, sessionName, duration)
	if err != nil {
		return nil, &endpointError{"InternalFailure", "Could not make the credentials.", http.StatusInternalServerError}
	}
	out := &assumeRoleWithWebIdentityResponse{}
	out.Result.SubjectFromWebIdentityToken = id.subject
	out.Result.Audience = id.audience
	out.Result.AssumedRoleUser.Arn = s.callerARN
	out.Result.AssumedRoleUser.AssumedRoleID = role.id + ":" + sessionName
	out.Result.Credentials = stsCredentials{AccessKeyID: keyID, SecretAccessKey: s.secret, SessionToken: s.token, Expiration: stsDate(s.expires)}
	out.Result.Provider = "arn:aws:iam::" + e.account + ":oidc-provider/" + strings.TrimPrefix(id.issuer, "https://")
	out.ResponseMetadata.RequestID = uuid.NewString()
	return out, nil
}

type stsErrorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// writeSTSError answers as STS does: an XML ErrorResponse with the error's
// type (Sender or Receiver), code and message.
func (e *Emulator) writeSTSError(w http.ResponseWriter, serr *endpointError) {
	var out stsErrorResponse
	out.Error.Type = "Sender"
	if serr.status >= 500 {
		out.Error.Type = "Receiver"
	}
	out.Error.Code, out.Error.Message = serr.code, serr.message
	out.RequestID = uuid.NewString()
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", out.RequestID)
	w.WriteHeader(serr.status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out)
	e.log.Debug("request", "op", OpAssumeRoleWithWebIdentity, "status", serr.status, "error", serr.code)
}
