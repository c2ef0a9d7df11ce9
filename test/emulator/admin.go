package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Secret is a secret to create with [Emulator.CreateSecret] or from a seed
// file. Its value is given either by SecretString or SecretBinary (a secret
// with one version) or by Versions; a secret with neither has no value yet.
type Secret struct {
	// Name is the secret's name: 1 to 512 of the characters A-Z a-z 0-9
	// and /_+=.@-.
	Name string `json:"Name"`
	// Description is optional.
	Description string `json:"Description,omitempty"`
	// Tags are optional.
	Tags []Tag `json:"Tags,omitempty"`
	// SecretString is the value of a one-version text secret.
	SecretString *string `json:"SecretString,omitempty"`
	// SecretBinary is the value of a one-version binary secret; in JSON it
	// is standard base64, as on the wire.
	SecretBinary []byte `json:"SecretBinary,omitempty"`
	// Versions are stored oldest first, each as PutSecretValue would
	// store it: by default each takes AWSCURRENT, so the one before
	// becomes AWSPREVIOUS.
	Versions []Version `json:"Versions,omitempty"`
}

// Version is one version of a secret's value.
type Version struct {
	// VersionId is the version's id (32 to 64 characters, usually a
	// UUID); a random UUID when empty.
	VersionId string `json:"VersionId,omitempty"`
	// SecretString is a text value. Exactly one of SecretString and
	// SecretBinary is set.
	SecretString *string `json:"SecretString,omitempty"`
	// SecretBinary is a binary value; in JSON it is standard base64.
	SecretBinary []byte `json:"SecretBinary,omitempty"`
	// VersionStages are the labels moved to this version; AWSCURRENT when
	// empty.
	VersionStages []string `json:"VersionStages,omitempty"`
}

// SeedFile is the content of a seed file: the secrets to preload and,
// optionally, the IAM model (see [IAM]; without one any key is accepted).
//
//	{"Secrets": [
//	  {"Name": "prod/db", "Description": "database login",
//	   "Tags": [{"Key": "env", "Value": "prod"}],
//	   "SecretString": "{\"username\":\"app\",\"password\":\"hunter2\"}"},
//	  {"Name": "prod/tls-key", "SecretBinary": "AAECAwQ="},
//	  {"Name": "prod/api-key", "Versions": [
//	    {"SecretString": "old-key"},
//	    {"SecretString": "new-key"},
//	    {"SecretString": "next-key", "VersionStages": ["AWSPENDING"]}]}
//	 ],
//	 "IAM": {
//	  "Issuers": [{"URL": "https://oidc.example.test/cluster",
//	               "JWKS": {"keys": [{"kty": "RSA", "kid": "...", "n": "...", "e": "AQAB"}]}}],
//	  "Roles": [
//	   {"ARN": "arn:aws:iam::123456789012:role/app",
//	    "TrustIssuer": "https://oidc.example.test/cluster",
//	    "TrustSubjects": ["system:serviceaccount:shop:app"],
//	    "Policy": {"Secrets": ["prod/db", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-*"]}},
//	   {"ARN": "arn:aws:iam::123456789012:role/web", "Policy": {"Secrets": ["web/*"], "ListSecrets": true}}],
//	  "PodIdentityAssociations": [{"Namespace": "shop", "ServiceAccount": "web",
//	                               "RoleARN": "arn:aws:iam::123456789012:role/web"}],
//	  "AccessKeys": [
//	   {"AccessKeyId": "AKIANODE0000000000", "SecretAccessKey": "node-secret", "User": "node"},
//	   {"AccessKeyId": "AKIAADMIN000000000", "SecretAccessKey": "admin-secret", "User": "admin",
//	    "Policy": {"Admin": true}}]}}
type SeedFile struct {
	Secrets []Secret `json:"Secrets"`
	// IAM, when present, turns on signature checks and permissions.
	IAM *IAM `json:"IAM,omitempty"`
}

// ParseSeed reads a seed file's JSON. Unknown members are refused, so that
// a misspelt member does not silently drop a value.
func ParseSeed(r io.Reader) (SeedFile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return SeedFile{}, fmt.Errorf("read: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f SeedFile
	if err := dec.Decode(&f); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			line := 1 + bytes.Count(data[:syn.Offset], []byte("\n"))
			return SeedFile{}, fmt.Errorf("line %d: invalid JSON: %v", line, syn)
		case errors.As(err, &typ):
			line := 1 + bytes.Count(data[:typ.Offset], []byte("\n"))
			return SeedFile{}, fmt.Errorf("line %d: member %s must be a %s, not a %s", line, typ.Field, typ.Type, typ.Value)
		case errors.Is(err, io.EOF):
			return SeedFile{}, errors.New(`empty file; want {"Secrets": [...]}`)
		default:
			return SeedFile{}, fmt.Errorf("invalid seed: %w", err)
		}
	}
	if dec.More() {
		return SeedFile{}, errors.New("trailing data after the JSON object")
	}
	return f, nil
}

// LoadSeedFile reads and parses the seed file at path. Errors name the file.
func LoadSeedFile(path string) (SeedFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return SeedFile{}, fmt.Errorf("seed file: %w", err)
	}
	defer fh.Close()
	f, err := ParseSeed(fh)
	if err != nil {
		return SeedFile{}, fmt.Errorf("seed file %s: %w", path, err)
	}
	return f, nil
}

// Seed sets f's IAM model, if it has one, and creates every secret of f,
// in order. It stops at the first secret that cannot be created and says
// which one and why.
func (e *Emulator) Seed(f SeedFile) error {
	if f.IAM != nil {
		if err := e.SetIAM(*f.IAM); err != nil {
			return err
		}
	}
	for i, s := range f.Secrets {
		if _, err := e.CreateSecret(s); err != nil {
			return fmt.Errorf("secret %d (%q): %w", i+1, s.Name, err)
		}
	}
	return nil
}

// CreateSecret creates a secret in-process, with the same rules and errors
// (an *Error) as the CreateSecret and PutSecretValue operations, and returns
// its ARN. The call is not counted. A secret whose versions cannot all be
// stored is not created.
func (e *Emulator) CreateSecret(s Secret) (string, error) {
	versions := s.Versions
	if s.SecretString != nil || s.SecretBinary != nil {
		if len(versions) > 0 {
			return "", errors.New("give either SecretString/SecretBinary or Versions, not both")
		}
		versions = []Version{{SecretString: s.SecretString, SecretBinary: s.SecretBinary}}
	}
	req := &createSecretRequest{Name: &s.Name, Tags: s.Tags}
	if s.Description != "" {
		req.Description = &s.Description
	}
	resp, aerr := e.createSecret(req)
	if aerr != nil {
		return "", aerr
	}
	for i, v := range versions {
		if _, err := e.PutSecretValue(resp.ARN, v); err != nil {
			unlock := e.lockForChange()
			if cur, ok := e.secrets[s.Name]; ok && cur.arn == resp.ARN {
				e.removeLocked(cur)
			}
			unlock()
			return "", fmt.Errorf("version %d: %w", i+1, err)
		}
	}
	return resp.ARN, nil
}

// PutSecretValue stores a new version of secret id (a name or ARN) in
// process, with the rules and errors of the PutSecretValue operation, and
// returns the version's id. The call is not counted.
func (e *Emulator) PutSecretValue(id string, v Version) (string, error) {
	req := &putSecretValueRequest{SecretId: &id, SecretString: v.SecretString, SecretBinary: v.SecretBinary, VersionStages: v.VersionStages}
	if v.VersionId != "" {
		req.ClientRequestToken = &v.VersionId
	}
	resp, aerr := e.putSecretValue(req)
	if aerr != nil {
		return "", aerr
	}
	return resp.VersionId, nil
}

// RotateSecret runs the built-in rotation of secret id (a name or ARN) in
// process, as the RotateSecret operation does, and returns the new
// AWSCURRENT version's id. The call is not counted.
func (e *Emulator) RotateSecret(id string) (string, error) {
	resp, aerr := e.rotateSecret(&rotateSecretRequest{SecretId: &id})
	if aerr != nil {
		return "", aerr
	}
	return deref(resp.VersionId), nil
}

// Stages returns the labelled versions of secret id (a name or ARN), as
// DescribeSecret's VersionIdsToStages. The call is not counted.
func (e *Emulator) Stages(id string) (map[string][]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, aerr := e.find(id)
	if aerr != nil {
		return nil, aerr
	}
	return s.stagesByVersion(), nil
}
