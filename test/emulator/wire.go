package emulator

import (
	"slices"
	"strconv"
	"time"
)

// epoch is a timestamp as the protocol sends it: seconds since the epoch,
// as a JSON number with a fraction.
type epoch time.Time

// MarshalJSON writes the time as epoch seconds with millisecond precision.
func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// ts returns t for a response member, or nil (member omitted) when t is
// zero.
func ts(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// day truncates a time to its UTC date, as the service does for
// LastAccessedDate.
func day(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}

func strPtr(s string) *string { return &s }

// Request and response shapes. Member names are the model's; absent
// members are omitted.

type createSecretRequest struct {
	Name                        *string
	ClientRequestToken          *string
	Description                 *string
	KmsKeyId                    *string
	SecretString                *string
	SecretBinary                []byte
	Tags                        []Tag
	AddReplicaRegions           []struct{ Region, KmsKeyId *string }
	ForceOverwriteReplicaSecret *bool
	Type                        *string
}

type arnName struct {
	ARN  string
	Name string
}

// versionResponse answers CreateSecret, UpdateSecret and RotateSecret:
// VersionId is set when a version was made.
type versionResponse struct {
	ARN       string
	Name      string
	VersionId *string `json:",omitempty"`
}

type secretIDRequest struct {
	SecretId *string
}

type getSecretValueRequest struct {
	SecretId     *string
	VersionId    *string
	VersionStage *string
}

type secretValue struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
}

func valueOf(s *secret, v *version) *secretValue {
	return &secretValue{
		ARN:           s.arn,
		Name:          s.name,
		VersionId:     v.id,
		SecretString:  v.str,
		SecretBinary:  v.bin,
		VersionStages: slices.Clone(v.stages),
		CreatedDate:   ts(v.created),
	}
}

// secretDetails is DescribeSecret's response and, with the map renamed, a
// ListSecrets entry.
type secretDetails struct {
	ARN                    string
	Name                   string
	Description            *string             `json:",omitempty"`
	KmsKeyId               *string             `json:",omitempty"`
	Type                   *string             `json:",omitempty"`
	RotationEnabled        *bool               `json:",omitempty"`
	RotationLambdaARN      *string             `json:",omitempty"`
	RotationRules          *rotationRules      `json:",omitempty"`
	LastRotatedDate        *epoch              `json:",omitempty"`
	LastChangedDate        *epoch              `json:",omitempty"`
	LastAccessedDate       *epoch              `json:",omitempty"`
	DeletedDate            *epoch              `json:",omitempty"`
	NextRotationDate       *epoch              `json:",omitempty"`
	Tags                   []Tag               `json:",omitempty"`
	VersionIdsToStages     map[string][]string `json:",omitempty"`
	SecretVersionsToStages map[string][]string `json:",omitempty"`
	CreatedDate            *epoch              `json:",omitempty"`
}

func detailsOf(s *secret) *secretDetails {
	d := &secretDetails{
		ARN:                s.arn,
		Name:               s.name,
		Description:        s.description,
		KmsKeyId:           s.kmsKeyID,
		Type:               s.secretType,
		RotationLambdaARN:  s.rotationLambda,
		RotationRules:      s.rules,
		LastRotatedDate:    ts(s.lastRotated),
		LastChangedDate:    ts(s.lastChanged),
		LastAccessedDate:   ts(s.lastAccessed),
		DeletedDate:        ts(s.deletion),
		NextRotationDate:   ts(s.nextRotation()),
		Tags:               slices.Clone(s.tags),
		VersionIdsToStages: s.stagesByVersion(),
		CreatedDate:        ts(s.created),
	}
	if s.rotationEnabled {
		d.RotationEnabled = new(bool)
		*d.RotationEnabled = true
	}
	return d
}

type filter struct {
	Key    *string
	Values []string
}

type listSecretsRequest struct {
	IncludePlannedDeletion *bool
	MaxResults             *int64
	NextToken              *string
	Filters                []filter
	SortOrder              *string
	SortBy                 *string
}

type listSecretsResponse struct {
	SecretList []*secretDetails
	NextToken  *string `json:",omitempty"`
}

type listSecretVersionIdsRequest struct {
	SecretId          *string
	MaxResults        *int64
	NextToken         *string
	IncludeDeprecated *bool
}

type versionEntry struct {
	VersionId        string
	VersionStages    []string `json:",omitempty"`
	LastAccessedDate *epoch   `json:",omitempty"`
	CreatedDate      *epoch   `json:",omitempty"`
}

type listSecretVersionIdsResponse struct {
	ARN       string
	Name      string
	Versions  []versionEntry
	NextToken *string `json:",omitempty"`
}

type batchGetSecretValueRequest struct {
	SecretIdList []string
	Filters      []filter
	MaxResults   *int64
	NextToken    *string
}

type batchError struct {
	SecretId  string
	ErrorCode string
	Message   string
}

type batchGetSecretValueResponse struct {
	SecretValues []*secretValue
	Errors       []batchError `json:",omitempty"`
	NextToken    *string      `json:",omitempty"`
}

type putSecretValueRequest struct {
	SecretId           *string
	ClientRequestToken *string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
	RotationToken      *string
}

type putSecretValueResponse struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

type updateSecretRequest struct {
	SecretId           *string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
	Type               *string
}

type updateSecretVersionStageRequest struct {
	SecretId            *string
	VersionStage        *string
	RemoveFromVersionId *string
	MoveToVersionId     *string
}

type deleteSecretRequest struct {
	SecretId                   *string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery *bool
}

type deleteSecretResponse struct {
	ARN          string
	Name         string
	DeletionDate *epoch `json:",omitempty"`
}

type rotateSecretRequest struct {
	SecretId                      *string
	ClientRequestToken            *string
	RotationLambdaARN             *string
	RotationRules                 *rotationRules
	RotateImmediately             *bool
	ExternalSecretRotationRoleArn *string
}

type tagResourceRequest struct {
	SecretId *string
	Tags     []Tag
}

type untagResourceRequest struct {
	SecretId *string
	TagKeys  []string
}

type empty struct{}
