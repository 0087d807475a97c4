package keyevents

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// Checker verifies one tenant live and applies the result, exactly as a
// sweep does (*tenantkms.Service: seal on a terminal failure, unseal on
// success, audit and events as usual).
type Checker interface {
	Check(ctx context.Context, tenantID string) (tenantkms.Outcome, error)
}

// Handler serves the key-events function: one EventBridge event in, an
// immediate verify of every tenant using a key it names. The event decides
// nothing: a forged or replayed one costs at most one verify per tenant
// per Limiter interval, and the verify's answer is KMS's. A verify
// deferred by the limiter waits inside the invocation (at most the
// interval).
type Handler struct {
	Index   keyseal.KeyIndex
	Tenants Checker
	// Limiter bounds the pushed verifies per tenant (nil: one per second
	// per tenant, in this process).
	Limiter *Limiter
	// Resolve maps a key ARN of an event to the provider and key id the
	// tenants registered (nil: aws-kms and the ARN itself). Dev mode maps
	// its local keys' ARN shape to the local provider.
	Resolve func(keyARN string) (provider, keyID string)
	// CheckTimeout bounds one tenant's verify (default 15 s: three KMS
	// timeouts, as a sweep's check).
	CheckTimeout time.Duration
	Log          *slog.Logger

	once sync.Once
}

// Result is what one event did.
type Result struct {
	Event   string                       `json:"event,omitempty"`
	Keys    []string                     `json:"keys,omitempty"`
	Ignored bool                         `json:"ignored,omitempty"`
	Checked map[string]tenantkms.Outcome `json:"checked,omitempty"`
	// Limited are the tenants not verified for this event because a
	// deferred verify, which runs after it, was already scheduled.
	Limited []string `json:"limited,omitempty"`
}

// checkConcurrency bounds the verifies one event runs at once (a key
// shared by many tenants).
const checkConcurrency = 16

func (h *Handler) init() {
	h.once.Do(func() {
		if h.Limiter == nil {
			h.Limiter = NewLimiter(time.Second)
		}
		if h.Resolve == nil {
			h.Resolve = func(arn string) (string, string) { return keyseal.ProviderAWS, arn }
		}
		if h.CheckTimeout <= 0 {
			h.CheckTimeout = 15 * time.Second
		}
		if h.Log == nil {
			h.Log = slog.Default()
		}
	})
}

// Handle serves one event. It fails the invocation (so EventBridge's
// asynchronous invoke retries) only when the key index cannot be read;
// a malformed or unknown event is logged and dropped, and a tenant's
// failed verify is logged: the poll is the backstop.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	h.init()
	n, ok, err := Parse(raw)
	if err != nil {
		h.Log.Warn("key event dropped", "err", err)
		return Result{Ignored: true}, nil
	}
	if !ok {
		return Result{Ignored: true}, nil
	}
	res := Result{Event: n.Name, Keys: n.KeyARNs, Checked: map[string]tenantkms.Outcome{}}
	if len(n.KeyARNs) == 0 {
		h.Log.Info("key event names no key; the poll covers it", "event", n.Name, "account", n.Account,
			"custom_key_store_id", n.CustomKeyStoreID)
		return res, nil
	}
	var tenants []string
	for _, arn := range n.KeyARNs {
		provider, keyID := h.Resolve(arn)
		ids, err := h.Index.TenantsByKey(ctx, provider, keyID)
		if err != nil {
			return res, err
		}
		tenants = append(tenants, ids...)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkConcurrency)
	for _, id := range tenants {
		wait, ok := h.Limiter.Reserve(id)
		if !ok {
			res.Limited = append(res.Limited, id)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			cctx, cancel := context.WithTimeout(ctx, h.CheckTimeout)
			defer cancel()
			outcome, err := h.Tenants.Check(cctx, id)
			if err != nil {
				h.Log.Error("pushed verify", "tenant_id", id, "event", n.Name, "err", err)
			}
			mu.Lock()
			res.Checked[id] = outcome
			mu.Unlock()
		})
	}
	wg.Wait()
	h.Log.Info("key event", "event", n.Name, "keys", n.KeyARNs, "checked", res.Checked, "limited", len(res.Limited))
	return res, nil
}

// Limiter allows at most one pushed verify per tenant per interval. A
// verify asked for inside the interval is not dropped but deferred to the
// interval's end (Reserve says how long to wait), and further asks while
// one is deferred join it: the deferred verify runs after them, so it sees
// whatever state they announced (a DisableKey then an EnableKey within a
// second end in one verify after both). It is per process: across Lambda
// instances running at once the bound is per instance, so N concurrent
// instances allow up to N verifies per tenant per interval (each a
// verify, never a decision).
type Limiter struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	// next is when each tenant's latest verify runs (past or scheduled).
	next map[string]time.Time
}

// NewLimiter returns a limiter of one per tenant per interval.
func NewLimiter(interval time.Duration) *Limiter {
	return &Limiter{interval: interval, now: time.Now, next: map[string]time.Time{}}
}

// limiterPrune is the size at which Reserve forgets tenants whose last
// verify is an interval old, so a flood of events naming many tenants
// cannot grow the map without bound.
const limiterPrune = 4096

// Reserve asks for a verify of tenantID: ok false when one is already
// scheduled and not yet run (it covers this ask), else how long to wait
// before running it (0: now).
func (l *Limiter) Reserve(tenantID string) (wait time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	last, seen := l.next[tenantID]
	switch {
	case seen && last.After(now):
		return 0, false
	case seen && now.Sub(last) < l.interval:
		at := last.Add(l.interval)
		l.next[tenantID] = at
		return at.Sub(now), true
	}
	if len(l.next) >= limiterPrune {
		for id, t := range l.next {
			if now.Sub(t) >= l.interval {
				delete(l.next, id)
			}
		}
	}
	l.next[tenantID] = now
	return 0, true
}
