package tenantkms

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyseal/keyseal/shared/session"
)

// cache holds unwrapped TMKs per process. An entry lives exactly ttl from the
// successful unwrap that produced it and is never extended: the customer's
// kill switch is bounded by ttl whatever else happens.
//
// Beside each TMK it keeps the session signer derived from it (made on the
// first session that needs it), in the same entry: it expires and is
// dropped with the TMK, never outliving it.
type cache struct {
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	items map[string]map[int]cacheItem // tenant -> TMK version -> entry
	group singleflight.Group
}

type cacheItem struct {
	tmk     []byte
	expires time.Time
	// signer is derived from tmk on first use; nil until then.
	signer *session.Signer
}

func newCache(ttl time.Duration, now func() time.Time) *cache {
	return &cache{ttl: ttl, now: now, items: make(map[string]map[int]cacheItem)}
}

// get returns the cached TMK or, on a miss, calls load once for all
// concurrent callers of the same key (single-flight) and caches its result.
func (c *cache) get(ctx context.Context, tenantID string, version int, load func(context.Context) ([]byte, error)) ([]byte, error) {
	if tmk, ok := c.lookup(tenantID, version); ok {
		return tmk, nil
	}
	v, err, _ := c.group.Do(tenantID+"#"+strconv.Itoa(version), func() (any, error) {
		if tmk, ok := c.lookup(tenantID, version); ok {
			return tmk, nil
		}
		// The shared call must not die with the first caller's context.
		tmk, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.put(tenantID, version, tmk)
		return tmk, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// signer returns the session signer of a tenant's TMK version: the one
// cached beside the TMK, or one derived from the TMK get returns (and then
// cached beside it, if that entry is still there).
func (c *cache) signer(ctx context.Context, tenantID string, version int, load func(context.Context) ([]byte, error)) (*session.Signer, error) {
	if sg := c.lookupSigner(tenantID, version); sg != nil {
		return sg, nil
	}
	tmk, err := c.get(ctx, tenantID, version, load)
	if err != nil {
		return nil, err
	}
	sg, err := session.NewSigner(tmk, tenantID, version)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Only beside the same TMK: an entry dropped (or replaced) since get
	// must not gain a signer it does not hold the TMK of.
	if it, ok := c.items[tenantID][version]; ok && bytes.Equal(it.tmk, tmk) {
		if it.signer != nil {
			return it.signer, nil
		}
		it.signer = sg
		c.items[tenantID][version] = it
	}
	return sg, nil
}

func (c *cache) lookupSigner(tenantID string, version int) *session.Signer {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[tenantID][version]
	if !ok || !c.now().Before(it.expires) {
		return nil
	}
	return it.signer
}

func (c *cache) lookup(tenantID string, version int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[tenantID][version]
	if !ok {
		return nil, false
	}
	if !c.now().Before(it.expires) {
		delete(c.items[tenantID], version)
		return nil, false
	}
	return it.tmk, true
}

// put stores a TMK that was just unwrapped successfully. A new entry has no
// signer yet: the previous one goes with the previous entry.
func (c *cache) put(tenantID string, version int, tmk []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items[tenantID] == nil {
		c.items[tenantID] = make(map[int]cacheItem)
	}
	c.items[tenantID][version] = cacheItem{tmk: tmk, expires: c.now().Add(c.ttl)}
}

// drop forgets every cached version of a tenant (terminal failure, seal,
// revoke).
func (c *cache) drop(tenantID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, tenantID)
}
