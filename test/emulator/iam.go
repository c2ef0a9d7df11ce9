package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// IAM is the emulator's model of who may call it and what each caller may
// read. Without one ([Emulator.SetIAM] never called, no "IAM" in the seed
// file) any well-formed SigV4 request is served, whatever its key. With
// one, every Secrets Manager request's signature is verified against the
// secret key of its access key (a static key of AccessKeys, or a session
// made by STS AssumeRoleWithWebIdentity or the Pod Identity agent's
// endpoint), and each call is allowed only as the caller's policy says.
type IAM struct {
	// Issuers are the OpenID Connect identity providers the account
	// trusts (IAM OIDC providers): a Kubernetes cluster's service-account
	// token issuer.
	Issuers []Issuer `json:"Issuers,omitempty"`
	// Roles are the IAM roles.
	Roles []Role `json:"Roles,omitempty"`
	// PodIdentityAssociations give service accounts a role through the EKS
	// Pod Identity agent's endpoint.
	PodIdentityAssociations []PodIdentityAssociation `json:"PodIdentityAssociations,omitempty"`
	// AccessKeys are long-term access keys (an IAM user's, or a node's).
	AccessKeys []AccessKey `json:"AccessKeys,omitempty"`
}

// Issuer is a trusted OpenID Connect token issuer.
type Issuer struct {
	// URL is the tokens' "iss" claim, e.g.
	// "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE".
	URL string `json:"URL"`
	// JWKS is its public signing keys, a JSON Web Key Set as served at
	// its jwks_uri: {"keys": [{"kty": "RSA", "kid": ..., "n": ..., "e":
	// ...}]}. A token's signature is checked against the key its "kid"
	// names (every key when it names none).
	JWKS json.RawMessage `json:"JWKS"`
}

// Role is an IAM role.
type Role struct {
	// ARN is "arn:aws:iam::ACCOUNT:role/NAME" (NAME may have a path,
	// "role/team/NAME"), in the emulator's account.
	ARN string `json:"ARN"`
	// TrustIssuer, when set, lets tokens of that issuer (the URL of one
	// of IAM.Issuers) assume the role with AssumeRoleWithWebIdentity
	// (IAM roles for service accounts), when their subject is one of
	// TrustSubjects and their audience is "sts.amazonaws.com".
	TrustIssuer string `json:"TrustIssuer,omitempty"`
	// TrustSubjects are the "sub" claims allowed to assume the role:
	// "system:serviceaccount:NAMESPACE:NAME". A * matches any characters
	// and a ? one, as in a trust policy's StringLike condition.
	TrustSubjects []string `json:"TrustSubjects,omitempty"`
	// MaxSessionDurationSeconds bounds DurationSeconds; 3600 when 0, at
	// most 43200.
	MaxSessionDurationSeconds int `json:"MaxSessionDurationSeconds,omitempty"`
	// Policy is what sessions of the role may do.
	Policy Policy `json:"Policy"`
}

// PodIdentityAssociation gives a service account a role through the EKS
// Pod Identity agent's endpoint.
type PodIdentityAssociation struct {
	Namespace      string `json:"Namespace"`
	ServiceAccount string `json:"ServiceAccount"`
	// RoleARN is the ARN of one of IAM.Roles.
	RoleARN string `json:"RoleARN"`
}

// AccessKey is a long-term access key.
type AccessKey struct {
	// AccessKeyID is the key's id (16 to 128 letters and digits, not
	// starting with "ASIA", which starts the session keys).
	AccessKeyID string `json:"AccessKeyId"`
	// SecretAccessKey is the key's secret, that signatures are checked
	// against.
	SecretAccessKey string `json:"SecretAccessKey"`
	// User is the name of the IAM user the key belongs to, shown in
	// AccessDenied messages and used to count its calls: the caller is
	// "arn:aws:iam::ACCOUNT:user/USER". The key id when empty.
	User string `json:"User,omitempty"`
	// Policy is what the key may do.
	Policy Policy `json:"Policy"`
}

// Policy is an identity-based policy, reduced to what a reader of secrets
// needs.
type Policy struct {
	// Secrets are the secrets the identity may read: GetSecretValue,
	// DescribeSecret, ListSecretVersionIds, and BatchGetSecretValue (a
	// policy naming any secret allows the batch action; each secret it
	// does not allow is reported in the answer's Errors). An entry is a
	// secret name, or a secret ARN when it starts with "arn:"; in both, a
	// * matches any characters and a ? one, as in a policy's Resource
	// ("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-??????",
	// "prod/*", "*").
	Secrets []string `json:"Secrets,omitempty"`
	// ListSecrets allows ListSecrets and BatchGetSecretValue with Filters.
	ListSecrets bool `json:"ListSecrets,omitempty"`
	// Admin allows every operation on every secret, writes included: the
	// key a test uses to create and rotate secrets over the wire.
	Admin bool `json:"Admin,omitempty"`
}

// Session durations.
const (
	// DefaultSessionDuration is the life of STS credentials when the
	// request gives no DurationSeconds.
	DefaultSessionDuration = time.Hour
	// PodIdentityCredentialDuration is the life of the credentials the
	// Pod Identity agent's endpoint hands out, as EKS's.
	PodIdentityCredentialDuration = 6 * time.Hour
	// maxSessionDuration is the longest a role's sessions may last.
	maxSessionDuration = 12 * time.Hour
)

// iamModel is an IAM, checked and indexed. It is never changed once made;
// SetIAM replaces it.
type iamModel struct {
	account string
	issuers map[string]*jose.JSONWebKeySet // by URL
	roles   map[string]*roleModel          // by ARN
	assoc   map[string]string              // role ARN by "NAMESPACE/SERVICEACCOUNT"
	keys    map[string]*keyModel           // by access key id
}

type roleModel struct {
	Role
	name     string           // the last segment of the ARN's path
	id       string           // "AROA..." unique id, for AssumedRoleId
	subjects []*regexp.Regexp // TrustSubjects compiled
	policy   *policyModel
}

type keyModel struct {
	AccessKey
	arn    string
	policy *policyModel
}

// policyModel is a Policy with its patterns compiled.
type policyModel struct {
	Policy
	names []*regexp.Regexp // entries matched against a secret's name
	arns  []*regexp.Regexp // entries matched against a secret's ARN
}

var (
	roleARNPattern     = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role/((?:[\x21-\x7e]+/)*)([\w+=,.@-]{1,64})$`)
	accessKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`)
	subjectPattern     = regexp.MustCompile(`^system:serviceaccount:[^:]+:[^:]+$`)
)

// likePattern compiles an IAM wildcard pattern (* any characters, ? one).
func likePattern(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func compilePolicy(p Policy) *policyModel {
	m := &policyModel{Policy: p}
	for _, s := range p.Secrets {
		if strings.HasPrefix(s, "arn:") {
			m.arns = append(m.arns, likePattern(s))
		} else {
			m.names = append(m.names, likePattern(s))
		}
	}
	return m
}

// allowsSecret reports whether the policy lets its holder read the secret
// with the given name and ARN.
func (p *policyModel) allowsSecret(name, arn string) bool {
	if p.Admin {
		return true
	}
	match := func(res []*regexp.Regexp, s string) bool {
		return s != "" && slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
	}
	return match(p.names, name) || match(p.arns, arn)
}

// compileIAM checks cfg and indexes it. Errors name the member at fault
// and what it should be.
func compileIAM(cfg IAM, account string, newID func(prefix string) (string, error)) (*iamModel, error) {
	m := &iamModel{
		account: account,
		issuers: make(map[string]*jose.JSONWebKeySet),
		roles:   make(map[string]*roleModel),
		assoc:   make(map[string]string),
		keys:    make(map[string]*keyModel),
	}
	for i, is := range cfg.Issuers {
		at := fmt.Sprintf("IAM.Issuers[%d]", i)
		if is.URL == "" {
			return nil, fmt.Errorf("%s.URL is empty: give the tokens' \"iss\" claim", at)
		}
		if _, dup := m.issuers[is.URL]; dup {
			return nil, fmt.Errorf("%s.URL %q is given twice", at, is.URL)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(is.JWKS, &set); err != nil {
			return nil, fmt.Errorf("%s.JWKS is not a JSON Web Key Set ({\"keys\": [...]}): %v", at, err)
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("%s.JWKS has no keys", at)
		}
		for j, k := range set.Keys {
			if !k.IsPublic() || !k.Valid() {
				return nil, fmt.Errorf("%s.JWKS key %d is not a valid public key (give the issuer's public keys only)", at, j)
			}
		}
		m.issuers[is.URL] = &set
	}
	for i, r := range cfg.Roles {
		at := fmt.Sprintf("IAM.Roles[%d]", i)
		sub := roleARNPattern.FindStringSubmatch(r.ARN)
		if sub == nil {
			return nil, fmt.Errorf("%s.ARN %q is not a role ARN: want arn:aws:iam::%s:role/NAME", at, r.ARN, account)
		}
		if sub[1] != account {
			return nil, fmt.Errorf("%s.ARN %q is in account %s, not the emulator's %s", at, r.ARN, sub[1], account)
		}
		if _, dup := m.roles[r.ARN]; dup {
			return nil, fmt.Errorf("%s.ARN %q is given twice", at, r.ARN)
		}
		if r.TrustIssuer != "" {
			if _, ok := m.issuers[r.TrustIssuer]; !ok {
				return nil, fmt.Errorf("%s.TrustIssuer %q is not the URL of one of IAM.Issuers", at, r.TrustIssuer)
			}
			if len(r.TrustSubjects) == 0 {
				return nil, fmt.Errorf("%s.TrustSubjects is empty: give the subjects allowed, like \"system:serviceaccount:NAMESPACE:NAME\"", at)
			}
		} else if len(r.TrustSubjects) > 0 {
			return nil, fmt.Errorf("%s.TrustSubjects is set without TrustIssuer: give the issuer the subjects belong to", at)
		}
		rm := &roleModel{Role: r, name: sub[3], policy: compilePolicy(r.Policy)}
		for j, s := range r.TrustSubjects {
			if !subjectPattern.MatchString(s) {
				return nil, fmt.Errorf("%s.TrustSubjects[%d] %q is not like \"system:serviceaccount:NAMESPACE:NAME\"", at, j, s)
			}
			rm.subjects = append(rm.subjects, likePattern(s))
		}
		d := r.MaxSessionDurationSeconds
		if d != 0 && (d < 3600 || time.Duration(d)*time.Second > maxSessionDuration) {
			return nil, fmt.Errorf("%s.MaxSessionDurationSeconds %d is out of range: give 3600 to 43200 (0 for 3600)", at, d)
		}
		id, err := newID("AROA")
		if err != nil {
			return nil, err
		}
		rm.id = id
		m.roles[r.ARN] = rm
	}
	for i, a := range cfg.PodIdentityAssociations {
		at := fmt.Sprintf("IAM.PodIdentityAssociations[%d]", i)
		if a.Namespace == "" || a.ServiceAccount == "" {
			return nil, fmt.Errorf("%s needs Namespace and ServiceAccount", at)
		}
		if _, ok := m.roles[a.RoleARN]; !ok {
			return nil, fmt.Errorf("%s.RoleARN %q is not the ARN of one of IAM.Roles", at, a.RoleARN)
		}
		k := a.Namespace + "/" + a.ServiceAccount
		if _, dup := m.assoc[k]; dup {
			return nil, fmt.Errorf("%s: service account %s already has an association", at, k)
		}
		m.assoc[k] = a.RoleARN
	}
	for i, k := range cfg.AccessKeys {
		at := fmt.Sprintf("IAM.AccessKeys[%d]", i)
		if !accessKeyIDPattern.MatchString(k.AccessKeyID) || strings.HasPrefix(k.AccessKeyID, sessionKeyPrefix) {
			return nil, fmt.Errorf("%s.AccessKeyId %q is not a long-term key id: 16 to 128 letters and digits, not starting with %s", at, k.AccessKeyID, sessionKeyPrefix)
		}
		if k.SecretAccessKey == "" {
			return nil, fmt.Errorf("%s.SecretAccessKey is empty", at)
		}
		if _, dup := m.keys[k.AccessKeyID]; dup {
			return nil, fmt.Errorf("%s.AccessKeyId %q is given twice", at, k.AccessKeyID)
		}
		user := k.User
		if user == "" {
			user = k.AccessKeyID
		}
		m.keys[k.AccessKeyID] = &keyModel{AccessKey: k, arn: fmt.Sprintf("arn:aws:iam::%s:user/%s", account, user), policy: compilePolicy(k.Policy)}
	}
	return m, nil
}

// SetIAM turns on (or replaces) the IAM model: from then on requests are
// authenticated and authorised as cfg says. Sessions made before keep
// their role, and get the role's new policy. An invalid cfg changes
// nothing; the error names the member at fault.
func (e *Emulator) SetIAM(cfg IAM) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := compileIAM(cfg, e.account, e.randomKeyID)
	if err != nil {
		return err
	}
	e.iam = m
	return nil
}

// IAMEnabled reports whether an IAM model is set.
func (e *Emulator) IAMEnabled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.iam != nil
}

// sessionKeyPrefix starts the access key id of temporary credentials.
const sessionKeyPrefix = "ASIA"

// session is a set of temporary credentials made by STS or the Pod
// Identity endpoint.
type session struct {
	secret, token string
	roleARN       string
	callerARN     string // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
	expires       time.Time
}

// sessionRetention is how long an expired session is kept, so that its
// use is answered ExpiredTokenException rather than as an unknown key.
const sessionRetention = 24 * time.Hour

// keyIDAlphabet is the alphabet of AWS's key and unique ids.
const keyIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// randomKeyID returns prefix and 16 random characters, as AWS's ids. The
// caller holds mu (which serialises the use of the random source).
func (e *Emulator) randomKeyID(prefix string) (string, error) {
	s, err := e.randomString(16, keyIDAlphabet)
	if err != nil {
		return "", err
	}
	return prefix + s, nil
}

// newSession makes temporary credentials for role, valid for d from now.
// The caller holds mu.
func (e *Emulator) newSession(role *roleModel, sessionName string, d time.Duration) (keyID string, s *session, err error) {
	now := e.clock.Now()
	for id, old := range e.sessions {
		if now.Sub(old.expires) > sessionRetention {
			delete(e.sessions, id)
		}
	}
	keyID, err = e.randomKeyID(sessionKeyPrefix)
	if err != nil {
		return "", nil, err
	}
	secret, err := e.randomString(40, alnum+"+/")
	if err != nil {
		return "", nil, err
	}
	token, err := e.randomString(256, alnum+"+/")
	if err != nil {
		return "", nil, err
	}
	s = &session{
		secret:    secret,
		token:     token,
		roleARN:   role.ARN,
		callerARN: fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", e.account, role.name, sessionName),
		expires:   now.Add(d).Truncate(time.Second),
	}
	e.sessions[keyID] = s
	return keyID, s, nil
}

// principal is who made a request: its ARN in messages, the identity its
// calls are counted under, and what it may do.
type principal struct {
	arn      string
	identity string
	policy   *policyModel
}

// errAccessDenied is the AccessDeniedException the service answers an
// identity-based denial with; resource is "" for actions on no resource.
func errAccessDenied(caller, action, resource string) *Error {
	on := ""
	if resource != "" {
		on = " on resource: " + resource
	}
	return newError(ErrAccessDenied, "User: %s is not authorized to perform: secretsmanager:%s%s because no identity-based policy allows the secretsmanager:%s action", caller, action, on, action)
}

// isReadOperation reports whether a Policy's Secrets allow op on them.
func isReadOperation(op string) bool {
	return op == OpGetSecretValue || op == OpDescribeSecret || op == OpListSecretVersionIds
}

// authorize decides whether p may make the call op with body. A nil p (no
// IAM) may do anything. BatchGetSecretValue's per-secret decisions are
// made by the operation itself.
func (e *Emulator) authorize(p *principal, op string, body []byte) *Error {
	if p == nil || p.policy.Admin {
		return nil
	}
	switch op {
	case OpListSecrets:
		if !p.policy.ListSecrets {
			return errAccessDenied(p.arn, op, "")
		}
		return nil
	case OpBatchGetSecretValue:
		var req struct{ Filters json.RawMessage }
		_ = json.Unmarshal(body, &req)
		if req.Filters != nil && !p.policy.ListSecrets || req.Filters == nil && len(p.policy.Secrets) == 0 {
			return errAccessDenied(p.arn, op, "")
		}
		return nil
	}
	var req struct{ SecretId, Name *string }
	_ = json.Unmarshal(body, &req)
	id := deref(req.SecretId)
	if op == OpCreateSecret {
		id = deref(req.Name)
	}
	if !isReadOperation(op) {
		return errAccessDenied(p.arn, op, id)
	}
	if req.SecretId == nil {
		return nil // the operation's validation answers
	}
	if !e.mayRead(p, id) {
		return errAccessDenied(p.arn, op, id)
	}
	return nil
}

// mayRead reports whether p may read the secret id names. For a secret
// that does not exist, the id itself is matched (as a name, or as an ARN),
// so that a caller learns nothing of secrets it may not read.
func (e *Emulator) mayRead(p *principal, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mayReadLocked(p, id)
}

// mayReadLocked is mayRead for a caller that holds mu.
func (e *Emulator) mayReadLocked(p *principal, id string) bool {
	if p == nil {
		return true
	}
	if s, aerr := e.find(id); aerr == nil {
		return p.policy.allowsSecret(s.name, s.arn)
	}
	if strings.HasPrefix(id, "arn:") {
		return p.policy.allowsSecret("", id)
	}
	return p.policy.allowsSecret(id, "")
}

// countIdentity counts a call of op under identity.
func (e *Emulator) countIdentity(identity, op string) {
	if identity == "" {
		return
	}
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	m := e.byIdentity[identity]
	if m == nil {
		m = make(map[string]int)
		e.byIdentity[identity] = m
	}
	m[op]++
}

// CallsByIdentity returns, by caller and then by operation, how many calls
// each caller made since the emulator was made or ResetCalls. The caller
// is the role ARN ("arn:aws:iam::ACCOUNT:role/NAME") for temporary
// credentials of STS or the Pod Identity endpoint (their calls to those
// endpoints included, under the role they asked for), the user ARN
// ("arn:aws:iam::ACCOUNT:user/NAME") for a static key, or, with no IAM
// model, the access key id the request was signed with. Requests whose
// caller is not established (unsigned, unknown key, bad signature,
// expired session) are not counted here, only in CallCounts.
func (e *Emulator) CallsByIdentity() map[string]map[string]int {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	out := make(map[string]map[string]int, len(e.byIdentity))
	for k, v := range e.byIdentity {
		out[k] = maps.Clone(v)
	}
	return out
}

// errNoIAM explains why STS and the Pod Identity endpoint refuse
// everything when no IAM model is set.
var errNoIAM = errors.New("the emulator has no IAM model: give it issuers and roles (SetIAM, or \"IAM\" in the seed file)")
