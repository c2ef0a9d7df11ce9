package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// rotatedPasswordLen is the length of the passwords the built-in rotation
// makes.
const rotatedPasswordLen = 32

func (e *Emulator) rotateSecret(req *rotateSecretRequest) (*versionResponse, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.token("clientRequestToken", req.ClientRequestToken)
	c.length("rotationLambdaARN", req.RotationLambdaARN, 0, 2048)
	if c.err != nil {
		return nil, c.err
	}
	if aerr := checkRules(req.RotationRules); aerr != nil {
		return nil, aerr
	}
	defer e.lockForChange()()
	s, aerr := e.find(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	if s.deleted() {
		return nil, newError(ErrInvalidRequest, "You tried to perform the operation on a secret that's currently marked deleted.")
	}
	token := deref(req.ClientRequestToken)
	if v, ok := s.versions[token]; ok {
		// A retried rotation with the same token changes nothing.
		return &versionResponse{ARN: s.arn, Name: s.name, VersionId: strPtr(v.id)}, nil
	}
	if p := s.holder(StagePending); p != nil && p != s.holder(StageCurrent) {
		return nil, newError(ErrInvalidRequest, "Previous rotation request is still in progress.")
	}
	now := e.clock.Now()
	if req.RotationRules != nil {
		s.rules = req.RotationRules
	}
	if req.RotationLambdaARN != nil {
		s.rotationLambda = req.RotationLambdaARN
	}
	s.rotationEnabled = true
	resp := &versionResponse{ARN: s.arn, Name: s.name}
	if req.RotateImmediately != nil && !*req.RotateImmediately {
		// Rotation is scheduled from now; nothing rotates yet.
		s.lastRotated = now
		s.lastChanged = now
		return resp, nil
	}
	v, aerr := e.rotate(s, token, now)
	if aerr != nil {
		return nil, aerr
	}
	resp.VersionId = strPtr(v.id)
	return resp, nil
}

// rotate runs the built-in rotation: a new value becomes AWSPENDING, then
// AWSCURRENT (the old version becoming AWSPREVIOUS), and AWSPENDING is
// removed once the rotation is complete. The caller holds mu.
func (e *Emulator) rotate(s *secret, token string, now time.Time) (*version, *Error) {
	str, bin, err := e.rotatedValue(s.holder(StageCurrent))
	if err != nil {
		return nil, newError(ErrInternalServiceError, "Could not make a new secret value.")
	}
	v, aerr := e.putVersion(s, token, str, bin, []string{StagePending}, now)
	if aerr != nil {
		return nil, aerr
	}
	s.attach(StageCurrent, v)
	v.removeStage(StagePending)
	s.lastRotated = now
	s.lastChanged = now
	s.pruneDeprecated()
	return v, nil
}

// rotatedValue makes the value of a rotation from the current version: a
// JSON object keeps its keys and gets a new "password"; any other string
// becomes a new password; binary becomes new random bytes.
func (e *Emulator) rotatedValue(cur *version) (*string, []byte, error) {
	password, err := e.randomString(rotatedPasswordLen, alnum)
	if err != nil {
		return nil, nil, err
	}
	if cur != nil && cur.bin != nil {
		b := make([]byte, 32)
		if _, err := io.ReadFull(e.random, b); err != nil {
			return nil, nil, fmt.Errorf("read random bytes: %w", err)
		}
		return nil, b, nil
	}
	if cur != nil && cur.str != nil {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(*cur.str), &obj) == nil && obj != nil {
			p, _ := json.Marshal(password)
			obj["password"] = p
			out, err := json.Marshal(obj)
			if err != nil {
				return nil, nil, fmt.Errorf("encode rotated value: %w", err)
			}
			s := string(out)
			return &s, nil, nil
		}
	}
	return &password, nil, nil
}
