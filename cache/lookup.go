package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Lookup asks DescribeSecret about a secret id now, whatever the cache
// holds, and returns what the answer says, without fetching any value. It is
// for ids that come from outside (a path someone looked up): keep decides
// from the answer whether the secret is wanted, and only then is the answer
// stored, as a refresh would store it, so that a first read needs no second
// DescribeSecret. An unwanted secret, one that does not exist (an error
// matching ErrNotFound) or a failed call leaves the cache as it was: nothing
// is added and nothing is evicted. An id the cache already holds keeps its
// entry and schedule. Concurrent lookups of one id share one call.
func (c *Cache) Lookup(ctx context.Context, secretID string, keep func(SecretInfo) bool) (SecretInfo, error) {
	seq := c.seq.Add(1)
	ch := c.flights.DoChan("l"+secretID, func() (any, error) {
		cctx, cancel := context.WithTimeout(context.Background(), c.cfg.FetchTimeout)
		defer cancel()
		out, err := c.describe(cctx, secretID)
		return described{out: out, at: c.clock.Now()}, err
	})
	var r described
	select {
	case res := <-ch:
		if res.Err != nil {
			return SecretInfo{}, res.Err
		}
		r = res.Val.(described)
	case <-ctx.Done():
		return SecretInfo{}, fmt.Errorf("look up %q: %w", secretID, ctx.Err())
	}
	info := infoOfAnswer(secretID, r.out, r.at)
	if keep != nil && keep(info) {
		c.adopt(secretID, r.out, r.at, seq)
	}
	return info, nil
}

// described is a DescribeSecret answer and when it came.
type described struct {
	out *secretsmanager.DescribeSecretOutput
	at  time.Time
}

// infoOfAnswer is what Info would report of an entry holding this answer.
func infoOfAnswer(id string, out *secretsmanager.DescribeSecretOutput, at time.Time) SecretInfo {
	a := answerOfDescribe(out)
	m := metaOf(a, id, secretMeta{})
	return SecretInfo{
		SecretID:             id,
		ARN:                  m.arn,
		Name:                 m.name,
		Stages:               indexStages(a.versions, nil).toMap(),
		RefreshedAt:          at,
		ScheduledForDeletion: a.deletedDate != nil,
		Tags:                 m.tags,
	}
}

// adopt makes an entry holding a DescribeSecret answer, unless the id has
// an entry already.
func (c *Cache) adopt(id string, out *secretsmanager.DescribeSecretOutput, at time.Time, seq uint64) {
	e := newSecretEntry(id, 0)
	e.mu.Lock() // not shared yet; locked for the fields' rule
	e.seq, e.force = seq, false
	c.storeLocked(e, answerOfDescribe(out), indexStages(out.VersionIdsToStages, nil), at, false)
	e.mu.Unlock()
	c.mu.Lock()
	if _, ok := c.secrets.peek(id); ok {
		c.mu.Unlock()
		return
	}
	c.nextKey++
	e.key = c.nextKey
	_, evicted := c.secrets.putIfAbsent(id, e)
	c.mu.Unlock()
	if evicted != nil {
		c.evict(*evicted)
	}
}
