package emulator

import (
	"slices"
	"strings"
	"time"
)

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (e *Emulator) createSecret(req *createSecretRequest) (*versionResponse, *Error) {
	var c checks
	c.required("name", req.Name != nil)
	c.token("clientRequestToken", req.ClientRequestToken)
	c.length("description", req.Description, 0, maxDescriptionLen)
	c.length("kmsKeyId", req.KmsKeyId, 0, 2048)
	c.value(req.SecretString, req.SecretBinary)
	c.tags(req.Tags)
	if c.err != nil {
		return nil, c.err
	}
	if aerr := checkName(*req.Name); aerr != nil {
		return nil, aerr
	}
	if aerr := checkOneValue(req.SecretString, req.SecretBinary); aerr != nil {
		return nil, aerr
	}
	if len(req.AddReplicaRegions) > 0 {
		return nil, newError(ErrInvalidRequest, "This emulator does not replicate secrets to other regions.")
	}
	tags, aerr := mergeTags(nil, req.Tags)
	if aerr != nil {
		return nil, aerr
	}
	defer e.lockForChange()()
	now := e.clock.Now()
	e.purgeExpired(now)
	name, token := *req.Name, deref(req.ClientRequestToken)
	if s, ok := e.secrets[name]; ok {
		if s.deleted() {
			return nil, newError(ErrInvalidRequest, "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retried create with the same token and value succeeds.
		if v, ok := s.versions[token]; ok && token != "" && v.sameValue(req.SecretString, req.SecretBinary) {
			return &versionResponse{ARN: s.arn, Name: s.name, VersionId: strPtr(v.id)}, nil
		}
		return nil, newError(ErrResourceExists, "The operation failed because the secret %s already exists.", name)
	}
	s, err := e.newSecret(name, now)
	if err != nil {
		return nil, newError(ErrInternalServiceError, "Could not create the secret.")
	}
	s.description, s.kmsKeyID, s.secretType, s.tags = req.Description, req.KmsKeyId, req.Type, tags
	resp := &versionResponse{ARN: s.arn, Name: s.name}
	if req.SecretString != nil || req.SecretBinary != nil {
		v, aerr := e.putVersion(s, token, req.SecretString, req.SecretBinary, nil, now)
		if aerr != nil {
			e.removeLocked(s)
			return nil, aerr
		}
		resp.VersionId = strPtr(v.id)
	}
	return resp, nil
}

func (e *Emulator) getSecretValue(req *getSecretValueRequest) (*secretValue, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.length("versionId", req.VersionId, minTokenLen, maxTokenLen)
	c.length("versionStage", req.VersionStage, 1, maxLabelLen)
	if c.err != nil {
		return nil, c.err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	v, aerr := s.resolve(req.VersionId, req.VersionStage)
	if aerr != nil {
		return nil, aerr
	}
	today := day(e.clock.Now())
	s.lastAccessed, v.lastAccessed = today, today
	return valueOf(s, v), nil
}

// resolve finds the version a GetSecretValue asks for: by id, by stage, or
// AWSCURRENT.
func (s *secret) resolve(versionID, stage *string) (*version, *Error) {
	if versionID != nil {
		v, ok := s.versions[*versionID]
		if !ok {
			return nil, newError(ErrResourceNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s", *versionID)
		}
		if stage != nil && !v.hasStage(*stage) {
			return nil, newError(ErrInvalidRequest, "You provided a VersionStage that is not associated to the provided VersionId.")
		}
		return v, nil
	}
	label := StageCurrent
	if stage != nil {
		label = *stage
	}
	v := s.holder(label)
	if v == nil {
		return nil, newError(ErrResourceNotFound, "Secrets Manager can't find the specified secret value for staging label: %s", label)
	}
	return v, nil
}

func (e *Emulator) describeSecret(req *secretIDRequest) (*secretDetails, *Error) {
	var c checks
	c.secretID(req.SecretId)
	if c.err != nil {
		return nil, c.err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, aerr := e.find(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	return detailsOf(s), nil
}

func (e *Emulator) listSecretVersionIds(req *listSecretVersionIdsRequest) (*listSecretVersionIdsResponse, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.rangeOf("maxResults", req.MaxResults, 1, 100)
	c.length("nextToken", req.NextToken, 1, 4096)
	if c.err != nil {
		return nil, c.err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	var all []versionEntry
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		v := s.order[i]
		if len(v.stages) == 0 && !deref(req.IncludeDeprecated) {
			continue
		}
		all = append(all, versionEntry{
			VersionId:        v.id,
			VersionStages:    slices.Clone(v.stages),
			LastAccessedDate: ts(v.lastAccessed),
			CreatedDate:      ts(v.created),
		})
	}
	page, next, aerr := paginate(OpListSecretVersionIds, all, req.NextToken, req.MaxResults, 100)
	if aerr != nil {
		return nil, aerr
	}
	if page == nil {
		page = []versionEntry{}
	}
	return &listSecretVersionIdsResponse{ARN: s.arn, Name: s.name, Versions: page, NextToken: next}, nil
}

func (e *Emulator) putSecretValue(req *putSecretValueRequest) (*putSecretValueResponse, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.token("clientRequestToken", req.ClientRequestToken)
	c.value(req.SecretString, req.SecretBinary)
	c.stages("versionStages", req.VersionStages)
	c.length("rotationToken", req.RotationToken, 36, 256)
	if c.err != nil {
		return nil, c.err
	}
	if aerr := checkOneValue(req.SecretString, req.SecretBinary); aerr != nil {
		return nil, aerr
	}
	if req.SecretString == nil && req.SecretBinary == nil {
		return nil, newError(ErrInvalidRequest, "You must provide either SecretString or SecretBinary.")
	}
	defer e.lockForChange()()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	v, aerr := e.putVersion(s, deref(req.ClientRequestToken), req.SecretString, req.SecretBinary, dedupe(req.VersionStages), e.clock.Now())
	if aerr != nil {
		return nil, aerr
	}
	return &putSecretValueResponse{ARN: s.arn, Name: s.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

func dedupe(labels []string) []string {
	var out []string
	for _, l := range labels {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

func (e *Emulator) updateSecret(req *updateSecretRequest) (*versionResponse, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.token("clientRequestToken", req.ClientRequestToken)
	c.length("description", req.Description, 0, maxDescriptionLen)
	c.length("kmsKeyId", req.KmsKeyId, 0, 2048)
	c.value(req.SecretString, req.SecretBinary)
	if c.err != nil {
		return nil, c.err
	}
	if aerr := checkOneValue(req.SecretString, req.SecretBinary); aerr != nil {
		return nil, aerr
	}
	defer e.lockForChange()()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	now := e.clock.Now()
	resp := &versionResponse{ARN: s.arn, Name: s.name}
	if req.SecretString != nil || req.SecretBinary != nil {
		v, aerr := e.putVersion(s, deref(req.ClientRequestToken), req.SecretString, req.SecretBinary, nil, now)
		if aerr != nil {
			return nil, aerr
		}
		resp.VersionId = strPtr(v.id)
	}
	if req.Description != nil {
		s.description = req.Description
	}
	if req.KmsKeyId != nil {
		s.kmsKeyID = req.KmsKeyId
	}
	if req.Type != nil {
		s.secretType = req.Type
	}
	s.lastChanged = now
	return resp, nil
}

func (e *Emulator) updateSecretVersionStage(req *updateSecretVersionStageRequest) (*arnName, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.required("versionStage", req.VersionStage != nil)
	c.length("versionStage", req.VersionStage, 1, maxLabelLen)
	c.length("removeFromVersionId", req.RemoveFromVersionId, minTokenLen, maxTokenLen)
	c.length("moveToVersionId", req.MoveToVersionId, minTokenLen, maxTokenLen)
	if c.err != nil {
		return nil, c.err
	}
	defer e.lockForChange()()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	label := *req.VersionStage
	var from, to *version
	for _, p := range []struct {
		id  *string
		dst **version
	}{{req.RemoveFromVersionId, &from}, {req.MoveToVersionId, &to}} {
		if p.id == nil {
			continue
		}
		v, ok := s.versions[*p.id]
		if !ok {
			return nil, newError(ErrInvalidParameter, "Not a valid version: %s", *p.id)
		}
		*p.dst = v
	}
	if from == nil && to == nil {
		return nil, newError(ErrInvalidParameter, "You must specify RemoveFromVersionId, MoveToVersionId or both.")
	}
	holder := s.holder(label)
	if to != nil && holder != nil && holder != to && from == nil {
		return nil, newError(ErrInvalidParameter, "The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder.id)
	}
	if from != nil && !from.hasStage(label) {
		return nil, newError(ErrInvalidParameter, "Version stage %s not found in version %s", label, from.id)
	}
	if to == nil && label == StageCurrent {
		return nil, newError(ErrInvalidParameter, "You can't remove the staging label %s from version %s without moving it to another version with MoveToVersionId.", label, from.id)
	}
	if to != nil && !to.hasStage(label) && len(to.stages) >= maxLabelsPerVersion {
		return nil, newError(ErrLimitExceeded, "A version can't have more than %d staging labels.", maxLabelsPerVersion)
	}
	if to != nil {
		s.attach(label, to)
	} else {
		from.removeStage(label)
	}
	s.lastChanged = e.clock.Now()
	s.pruneDeprecated()
	return &arnName{ARN: s.arn, Name: s.name}, nil
}

func (e *Emulator) deleteSecret(req *deleteSecretRequest) (*deleteSecretResponse, *Error) {
	var c checks
	c.secretID(req.SecretId)
	if c.err != nil {
		return nil, c.err
	}
	force := deref(req.ForceDeleteWithoutRecovery)
	if force && req.RecoveryWindowInDays != nil {
		return nil, newError(ErrInvalidParameter, "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if req.RecoveryWindowInDays != nil {
		days = *req.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, newError(ErrInvalidParameter, "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	defer e.lockForChange()()
	now := e.clock.Now()
	s, aerr := e.find(*req.SecretId)
	if aerr != nil {
		if !force {
			return nil, aerr
		}
		// The service answers a forced delete of an unknown secret with
		// success.
		arn := *req.SecretId
		if !strings.HasPrefix(arn, "arn:") {
			arn = e.arnPrefix() + arn
		}
		return &deleteSecretResponse{ARN: arn, Name: *req.SecretId, DeletionDate: ts(now)}, nil
	}
	if force {
		e.removeLocked(s)
		return &deleteSecretResponse{ARN: s.arn, Name: s.name, DeletionDate: ts(now)}, nil
	}
	if s.deleted() {
		return nil, newError(ErrInvalidRequest, "You tried to perform the operation on a secret that's currently marked deleted.")
	}
	s.deletion = now.Add(time.Duration(days) * 24 * time.Hour)
	e.scheduled[s.name] = s
	return &deleteSecretResponse{ARN: s.arn, Name: s.name, DeletionDate: ts(s.deletion)}, nil
}

func (e *Emulator) restoreSecret(req *secretIDRequest) (*arnName, *Error) {
	var c checks
	c.secretID(req.SecretId)
	if c.err != nil {
		return nil, c.err
	}
	defer e.lockForChange()()
	s, aerr := e.find(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	s.deletion = time.Time{}
	delete(e.scheduled, s.name)
	s.lastChanged = e.clock.Now()
	return &arnName{ARN: s.arn, Name: s.name}, nil
}

func (e *Emulator) tagResource(req *tagResourceRequest) (*empty, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.required("tags", req.Tags != nil)
	c.tags(req.Tags)
	if c.err != nil {
		return nil, c.err
	}
	defer e.lockForChange()()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	tags, aerr := mergeTags(s.tags, req.Tags)
	if aerr != nil {
		return nil, aerr
	}
	s.tags = tags
	s.lastChanged = e.clock.Now()
	return &empty{}, nil
}

func (e *Emulator) untagResource(req *untagResourceRequest) (*empty, *Error) {
	var c checks
	c.secretID(req.SecretId)
	c.required("tagKeys", req.TagKeys != nil)
	for _, k := range req.TagKeys {
		c.lengthOf("tagKeys.member", len(k), 1, maxTagKeyLen)
	}
	if c.err != nil {
		return nil, c.err
	}
	defer e.lockForChange()()
	s, aerr := e.findActive(*req.SecretId)
	if aerr != nil {
		return nil, aerr
	}
	s.tags = slices.DeleteFunc(s.tags, func(t Tag) bool { return slices.Contains(req.TagKeys, t.Key) })
	s.lastChanged = e.clock.Now()
	return &empty{}, nil
}
