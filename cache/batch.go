package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// BatchClient is the part of the Secrets Manager API the cache calls to
// fetch many values at once; the signature is the SDK's own, so
// *secretsmanager.Client satisfies it. A Client that does not implement it
// gets GetSecretValue calls only.
type BatchClient interface {
	BatchGetSecretValue(ctx context.Context, params *secretsmanager.BatchGetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

var _ BatchClient = (*secretsmanager.Client)(nil)

// Batch fetching bounds.
const (
	// maxBatchIDs is how many secrets one BatchGetSecretValue takes.
	maxBatchIDs = 20
	// prefetchBatches bounds the batches Prefetch runs at once, per cache
	// (one Prefetch of many ids runs that many at once).
	prefetchBatches = 2
	// fallbackFetches bounds the GetSecretValue calls one batch's fallback
	// makes at once.
	fallbackFetches = 4
)

// fetchItem is a value to fetch: version vid of e's secret, or its
// AWSCURRENT version, whatever it is, when vid is "".
type fetchItem struct {
	e   *secretEntry
	vid string
	ve  *versionEntry // the version entry claimed for the fetch, if any
}

// batchWork is one run of background fetches (a Prefetch, the values a
// listing page moved): its calls are background work, on the cache's
// background context, and the claims it holds name it, so that a reader
// who comes to wait for one of its values promotes it (see promotableCtx),
// as one who joins a background refresh does.
type batchWork struct {
	ctx     context.Context // the cache's background context, promotable
	promote chan struct{}   // closed once a reader waits for the work
	once    sync.Once
}

func (c *Cache) newBatchWork() *batchWork {
	w := &batchWork{promote: make(chan struct{})}
	w.ctx = promotableCtx(c.bgCtx, w.promote)
	return w
}

// promoteNow makes the work's calls a reader's from now on.
func (w *batchWork) promoteNow() { w.once.Do(func() { close(w.promote) }) }

// claim marks a version whose value is being fetched: readers wait for done
// rather than fetch it too. work is the batch that holds the claim, if a
// batch does.
type claim struct {
	done chan struct{}
	work *batchWork
}

// batcher remembers whether BatchGetSecretValue may be used.
type batcher struct {
	refusedOnce sync.Once
	refused     chan struct{} // closed once the call was refused
	slots       chan struct{} // Prefetch's batches under way
}

func newBatcher() batcher {
	return batcher{refused: make(chan struct{}), slots: make(chan struct{}, prefetchBatches)}
}

// batchAPI returns the client's BatchGetSecretValue, unless it has none or
// the service refused it.
func (c *Cache) batchAPI() (BatchClient, bool) {
	api, ok := c.client.(BatchClient)
	if !ok {
		return nil, false
	}
	select {
	case <-c.batch.refused:
		return nil, false
	default:
		return api, true
	}
}

// refuseBatch remembers that BatchGetSecretValue is refused, saying so once.
func (c *Cache) refuseBatch(err error) {
	c.batch.refusedOnce.Do(func() {
		close(c.batch.refused)
		c.log.Warn("BatchGetSecretValue is refused; fetching values one at a time with GetSecretValue from now on "+
			"(grant secretsmanager:BatchGetSecretValue to cut the calls)", "error", err)
	})
}

// fetchVersions fetches the values of items, as work w, and stores each
// one, or its error, in its version entry, as GetSecretValue would. Items
// may come claimed (claimLocked) already; every claim is ended on return.
// Values that are the secret's AWSCURRENT (or any current value, vid "") go
// in batches of 20; the others, and every one when batches are refused, are
// fetched by version id. It returns when all are stored.
func (c *Cache) fetchVersions(w *batchWork, items []fetchItem) {
	ctx := w.ctx
	api, ok := c.batchAPI()
	var batched, single []fetchItem
	now := c.clock.Now()
	for _, it := range items {
		it.e.mu.Lock()
		if it.vid != "" && it.ve == nil {
			if it.ve = c.claimLocked(it.e, it.vid, now, w); it.ve == nil {
				it.e.mu.Unlock()
				continue // cached, failed recently, or being fetched already
			}
		}
		if ok && (it.vid == "" || it.vid == it.e.stages.get(awsCurrent)) {
			batched = append(batched, it)
		} else {
			unclaimLocked(it)
			it.ve = nil
			single = append(single, it)
		}
		it.e.mu.Unlock()
	}
	for start := 0; start < len(batched); start += maxBatchIDs {
		chunk := batched[start:min(start+maxBatchIDs, len(batched))]
		if len(chunk) == 1 && chunk[0].vid != "" {
			// One known version: GetSecretValue costs the same, and
			// shares the single flight of reads.
			chunk[0].e.mu.Lock()
			unclaimLocked(chunk[0])
			chunk[0].e.mu.Unlock()
			single = append(single, chunk[0])
			continue
		}
		single = append(single, c.fetchBatch(ctx, api, chunk)...)
	}
	c.fetchEach(ctx, single)
}

// awsCurrent is the stage BatchGetSecretValue returns.
const awsCurrent = "AWSCURRENT"

// claimLocked marks version vid of e as being fetched by w and returns its
// entry, unless it needs no fetch or is being fetched already; e is locked.
func (c *Cache) claimLocked(e *secretEntry, vid string, now time.Time, w *batchWork) *versionEntry {
	ve := c.versionLocked(e, vid)
	if ve.busy != nil || !ve.needsFetch(now) {
		return nil
	}
	ve.busy = &claim{done: make(chan struct{}), work: w}
	return ve
}

// unclaimLocked ends an item's claim, if it holds one; the version's
// waiters look again. The item's entry is locked.
func unclaimLocked(it fetchItem) {
	if it.ve != nil && it.ve.busy != nil {
		close(it.ve.busy.done)
		it.ve.busy = nil
	}
}

// fetchBatch fetches one batch of at most 20 secrets' current values and
// stores them. It returns the items to fetch one by one instead: all of them
// when the call is refused, and those whose current version is no longer
// the one wanted.
func (c *Cache) fetchBatch(ctx context.Context, api BatchClient, items []fetchItem) (fallback []fetchItem) {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.e.id)
	}
	var out *secretsmanager.BatchGetSecretValueOutput
	err := c.call(ctx, OpBatchGetSecretValue, "", func(ctx context.Context) (err error) {
		out, err = api.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
		if err == nil && out == nil {
			err = errors.New("empty answer")
		}
		return err
	})
	now := c.clock.Now()
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == codeAccessDenied {
		c.refuseBatch(err)
		for _, it := range items {
			it.e.mu.Lock()
			unclaimLocked(it)
			it.e.mu.Unlock()
		}
		return items
	}
	values := make(map[string]*types.SecretValueEntry)
	failed := make(map[string]types.APIErrorType)
	if err == nil {
		for i := range out.SecretValues {
			v := &out.SecretValues[i]
			values[aws.ToString(v.Name)] = v
			values[aws.ToString(v.ARN)] = v
		}
		for _, f := range out.Errors {
			failed[aws.ToString(f.SecretId)] = f
		}
	}
	for _, it := range items {
		e := it.e
		e.mu.Lock()
		v, got := values[e.id]
		f, bad := failed[e.id]
		switch {
		case errors.Is(err, errClosed):
			// The cache closed while the call waited: nothing to store.
		case err != nil:
			// The whole call failed (throttled, unreachable): each value
			// backs off as a failed GetSecretValue would.
			if it.vid != "" {
				ve := c.versionLocked(e, it.vid)
				c.failLocked(&ve.fail, err, now)
			}
		case got && aws.ToString(v.VersionId) != "" && (it.vid == "" || it.vid == aws.ToString(v.VersionId)):
			ve := c.versionLocked(e, aws.ToString(v.VersionId))
			c.storeVersionLocked(ve, valueOfBatch(v), now)
		case bad && it.vid != "":
			ve := c.versionLocked(e, it.vid)
			c.failLocked(&ve.fail, batchError(e.id, f), now)
		case it.vid != "":
			// AWSCURRENT moved on since, or the answer lacks the secret:
			// fetch the version wanted by its id.
			fallback = append(fallback, it)
		}
		unclaimLocked(it)
		e.mu.Unlock()
	}
	return fallback
}

// valueOfBatch is the GetSecretValue answer a batch entry stands for.
func valueOfBatch(v *types.SecretValueEntry) *secretsmanager.GetSecretValueOutput {
	return &secretsmanager.GetSecretValueOutput{
		ARN:           v.ARN,
		Name:          v.Name,
		VersionId:     v.VersionId,
		VersionStages: v.VersionStages,
		CreatedDate:   v.CreatedDate,
		SecretString:  v.SecretString,
		SecretBinary:  v.SecretBinary,
	}
}

// batchError turns one secret's error in a batch into the error a
// GetSecretValue of it would have given: the service's typed exception
// where the SDK has one, its code otherwise.
func batchError(id string, f types.APIErrorType) error {
	code, msg := aws.ToString(f.ErrorCode), f.Message
	var err error
	switch code {
	case "ResourceNotFoundException":
		err = &types.ResourceNotFoundException{Message: msg}
	case "DecryptionFailure":
		err = &types.DecryptionFailure{Message: msg}
	case "InternalServiceError":
		err = &types.InternalServiceError{Message: msg}
	case "InvalidParameterException":
		err = &types.InvalidParameterException{Message: msg}
	case "InvalidRequestException":
		err = &types.InvalidRequestException{Message: msg}
	default:
		err = &smithy.GenericAPIError{Code: code, Message: aws.ToString(msg)}
	}
	return translateError(OpBatchGetSecretValue, id, err)
}

// fetchEach fetches versions one by one, a few at once, sharing the single
// flight of reads.
func (c *Cache) fetchEach(ctx context.Context, items []fetchItem) {
	if len(items) == 0 {
		return
	}
	sem := make(chan struct{}, fallbackFetches)
	var wg sync.WaitGroup
	for _, it := range items {
		if it.vid == "" {
			continue // a read will find out which version it needs
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Errors are stored in the version entry and surface on read.
			_ = c.waitFlight(context.Background(), c.versionFlight(ctx, it.e, it.vid))
		}()
	}
	wg.Wait()
}

// Prefetch fetches, in the background, the default stage's values of those
// secrets that have none cached yet, in batches of 20
// (BatchGetSecretValue), a few batches at a time, so that a filesystem
// listing a cold directory of secrets costs one call per 20 secrets rather
// than one each. It returns at once. A secret whose metadata is cached
// (from a listing or a DescribeSecret) has the version its stage names
// fetched; one that is not has its current value fetched and stored under
// the version id the answer gives. Readers that need a value being
// prefetched wait for it rather than fetch it again. Its calls are
// background work (see Config.MaxInFlight), on the cache's background
// context rather than ctx: they end when the cache closes, and nothing
// happens once it is closed.
func (c *Cache) Prefetch(ctx context.Context, ids []string) {
	w := c.newBatchWork()
	items := c.prefetchItems(ids, w)
	if len(items) == 0 {
		return
	}
	started := c.goBackground(func() {
		var wg sync.WaitGroup
		defer wg.Wait()
		for start := 0; start < len(items); start += maxBatchIDs {
			chunk := items[start:min(start+maxBatchIDs, len(items))]
			select {
			case c.batch.slots <- struct{}{}:
			case <-c.done:
				unclaimAll(items[start:])
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.fetchVersions(w, chunk)
				<-c.batch.slots
			}()
		}
	})
	if !started {
		unclaimAll(items)
	}
}

// unclaimAll ends the claims items hold.
func unclaimAll(items []fetchItem) {
	for _, it := range items {
		it.e.mu.Lock()
		unclaimLocked(it)
		it.e.mu.Unlock()
	}
}

// prefetchItems lists what Prefetch must fetch: each id's default stage
// value when not cached. Values whose version is known are claimed at once,
// so that a reader who needs one before its batch is sent waits for the
// batch (w) rather than fetch it alone.
func (c *Cache) prefetchItems(ids []string, w *batchWork) []fetchItem {
	stage := c.cfg.DefaultVersionStage
	now := c.clock.Now()
	var items []fetchItem
	for _, id := range ids {
		c.mu.Lock()
		e, ok := c.secrets.peek(id)
		c.mu.Unlock()
		if !ok {
			items = append(items, fetchItem{e: c.entry(id)})
			continue
		}
		e.mu.Lock()
		switch {
		case !e.described:
			if e.fail == nil {
				items = append(items, fetchItem{e: e})
			}
		case !e.deleted && e.stages.get(stage) != "":
			vid := e.stages.get(stage)
			if ve := c.claimLocked(e, vid, now, w); ve != nil {
				e.track(stage)
				items = append(items, fetchItem{e: e, vid: vid, ve: ve})
			}
		}
		e.mu.Unlock()
	}
	return items
}
