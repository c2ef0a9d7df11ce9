package emulator

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// PodIdentityPath is the path of the EKS Pod Identity agent's credentials
// endpoint; the agent serves it at http://169.254.170.23/v1/credentials.
// Give the SDK's endpointcreds provider the emulator's URL followed by it.
const PodIdentityPath = "/v1/credentials"

// OpPodIdentityCredentials counts the calls of the Pod Identity agent's
// credentials endpoint.
const OpPodIdentityCredentials = "PodIdentityCredentials"

// Error codes of the Pod Identity endpoint, as the EKS Auth service names
// them.
const (
	ErrPodIdentityInvalidToken     = "InvalidTokenException"
	ErrPodIdentityInvalidRequest   = "InvalidRequestException"
	ErrPodIdentityNoAssociation    = "ResourceNotFoundException"
	ErrPodIdentityMethodNotAllowed = "MethodNotAllowed"
)

// podIdentityCredentials is the agent's answer, as aws-sdk-go-v2's
// endpointcreds provider reads it.
type podIdentityCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	AccountID       string `json:"AccountId"`
	Expiration      string `json:"Expiration"`
}

// servePodIdentity answers the agent's credentials endpoint: GET with the
// pod's service-account token (audience "pods.eks.amazonaws.com") as the
// Authorization header. The token is verified as STS verifies a web
// identity token; the association of its namespace and service account
// names the role. Errors are JSON {"code": ..., "message": ...} with a 4xx
// status, which the SDK turns into an error carrying the code.
func (e *Emulator) servePodIdentity(w http.ResponseWriter, r *http.Request) {
	e.count(OpPodIdentityCredentials, isRetry(r))
	if r.Method != http.MethodGet {
		writePodIdentityError(w, http.StatusMethodNotAllowed, ErrPodIdentityMethodNotAllowed, "The credentials endpoint answers GET only.")
		return
	}
	if e.playFault(w, r, OpPodIdentityCredentials, "", func(code, msg string, status int) {
		writePodIdentityError(w, status, code, msg)
	}) {
		return
	}
	token := r.Header.Get("Authorization")
	if token == "" {
		writePodIdentityError(w, http.StatusBadRequest, ErrPodIdentityInvalidRequest, "Service account token cannot be empty")
		return
	}
	creds, perr := e.podIdentityCredentials(token)
	if perr != nil {
		writePodIdentityError(w, perr.status, perr.code, perr.message)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(creds)
	e.log.Debug("request", "op", OpPodIdentityCredentials, "status", http.StatusOK)
}

// podIdentityCredentials verifies a Pod Identity token and makes the
// credentials of its service account's role, or says why not.
func (e *Emulator) podIdentityCredentials(token string) (*podIdentityCredentials, *endpointError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, terr := verifyWebToken(e.iam, token, kubetoken.AudiencePodIdentity, e.clock.Now())
	if terr != nil {
		code := ErrPodIdentityInvalidToken
		if terr.problem == tokenExpired {
			code = ErrExpiredToken
		}
		return nil, &endpointError{code, terr.msg, http.StatusBadRequest}
	}
	ns, sa := id.kubernetes.Namespace, id.kubernetes.ServiceAccount.Name
	if ns == "" || sa == "" || id.subject != kubetoken.Subject(ns, sa) {
		return nil, &endpointError{ErrPodIdentityInvalidToken, "The token is not a Kubernetes service account token: its kubernetes.io claim does not name the namespace and service account of its subject.", http.StatusBadRequest}
	}
	roleARN, ok := e.iam.assoc[ns+"/"+sa]
	if !ok {
		return nil, &endpointError{ErrPodIdentityNoAssociation, "No Pod Identity association for service account " + sa + " in namespace " + ns + ".", http.StatusNotFound}
	}
	e.countIdentity(roleARN, OpPodIdentityCredentials)
	sessionName := "eks-emulator-" + sa
	if id.kubernetes.Pod != nil {
		sessionName = "eks-emulator-" + id.kubernetes.Pod.Name
	}
	if len(sessionName) > 64 {
		sessionName = sessionName[:64]
	}
	keyID, s, err := e.newSession(e.iam.roles[roleARN], sessionName, PodIdentityCredentialDuration)
	if err != nil {
		return nil, &endpointError{"InternalServerException", "Could not make the credentials.", http.StatusInternalServerError}
	}
	return &podIdentityCredentials{
		AccessKeyID:     keyID,
		SecretAccessKey: s.secret,
		Token:           s.token,
		AccountID:       e.account,
		Expiration:      s.expires.UTC().Format(time.RFC3339),
	}, nil
}

func writePodIdentityError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}
