//go:build integration

package suite

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// faultyEnv is an env whose keyseal reaches DynamoDB Local only through a
// fault proxy (store rules), with a store straight to DynamoDB Local for
// the test's own reads.
type faultyEnv struct {
	*env
	store  *faultproxy.Proxy
	direct *dynamostore.Store
}

func newFaultyEnv(tb testing.TB, settings map[string]string) *faultyEnv {
	tb.Helper()
	p, err := faultproxy.New(standin.DynamoDBEndpoint(tb))
	if err != nil {
		tb.Fatal(err)
	}
	url, err := p.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	vars := map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": url}
	for k, v := range settings {
		vars[k] = v
	}
	e := newEnv(tb, vars)
	return &faultyEnv{env: e, store: p, direct: dynamostore.New(e.ddb, e.table)}
}

// storeFaults makes rate of every request to keyseal's table fail, split
// evenly over throttling, 500s and answers dropped after the write.
func (f *faultyEnv) storeFaults(rate float64) {
	// The first rule that fires wins, so each later rule's rate is of the
	// requests the earlier ones let through.
	third := rate / 3
	f.store.AddStoreRule(faultproxy.StoreRule{Table: f.table, Fault: faultproxy.Throttle, Rate: third})
	f.store.AddStoreRule(faultproxy.StoreRule{Table: f.table, Fault: faultproxy.ServerError, Rate: third / (1 - third)})
	f.store.AddStoreRule(faultproxy.StoreRule{Table: f.table, Fault: faultproxy.DropAnswer, Rate: third / (1 - 2*third)})
}

func (f *faultyEnv) row(t tenant) *keyseal.Tenant {
	f.tb.Helper()
	tn, err := f.direct.GetTenant(context.Background(), t.ID)
	if err != nil {
		f.tb.Fatal(err)
	}
	return tn
}

func (f *faultyEnv) entries(t tenant, action string) int {
	f.tb.Helper()
	got, err := f.direct.ListAudit(context.Background(), t.ID, keyseal.AuditQuery{Limit: 1000, Action: action})
	if err != nil {
		f.tb.Fatal(err)
	}
	return len(got)
}

// countEvents drains the queue for a few seconds and counts the events of
// typ for the tenant (delivery is asynchronous; a duplicate would arrive
// within this window like the original).
func (e *env) countEvents(typ, tenantID string) int {
	e.tb.Helper()
	e.awaitEvent(typ, tenantID)
	for range 3 {
		e.receive()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.received {
		if ev.DetailType == typ && ev.Detail.TenantID == tenantID {
			n++
		}
	}
	return n
}

func (f *faultyEnv) disable(t tenant) {
	f.tb.Helper()
	if _, err := f.kms.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(t.KeyID)}); err != nil {
		f.tb.Fatal(err)
	}
}

func (f *faultyEnv) enable(t tenant) {
	f.tb.Helper()
	if _, err := f.kms.EnableKey(context.Background(), &kms.EnableKeyInput{KeyId: aws.String(t.KeyID)}); err != nil {
		f.tb.Fatal(err)
	}
}

// TestStoreLostAnswerOfASeal: every answer to the seal's transaction is
// lost after it committed. The seal stands, once, and its event is
// published once; agents then get 503 tenant_sealed.
func TestStoreLostAnswerOfASeal(t *testing.T) {
	f := newFaultyEnv(t, nil)
	tn := f.newTenant()
	f.disable(tn)
	f.store.AddStoreRule(faultproxy.StoreRule{Operation: "TransactWriteItems", Table: f.table, Fault: faultproxy.DropAnswer})
	f.sweep()
	f.store.Clear()
	if n := f.store.Injected()[faultproxy.DropAnswer]; n == 0 {
		t.Fatal("no answer was dropped: the test proved nothing")
	}
	if row := f.row(tn); row.Status != keyseal.StatusSealed {
		t.Fatalf("tenant %s after the sweep, want sealed", row.Status)
	}
	if n := f.entries(tn, keyseal.ActionSeal); n != 1 {
		t.Fatalf("%d seal entries, want 1", n)
	}
	if n := f.countEvents("tenant.kms.sealed", tn.ID); n != 1 {
		t.Fatalf("%d tenant.kms.sealed events, want 1", n)
	}
	f.session(tn).agentError(http.StatusServiceUnavailable, keyseal.ESEALED)
}

// TestStoreLostAnswerOfAForcedUnseal: the admin's forced unseal commits
// but every answer is lost: the admin gets 200 (not 500, then 409 on a
// retry), one unseal entry, one tenant.kms.unsealed event.
func TestStoreLostAnswerOfAForcedUnseal(t *testing.T) {
	f := newFaultyEnv(t, nil)
	tn := f.newTenant()
	f.disable(tn)
	f.sweep()
	f.enable(tn)
	admin := f.admin(tn.ID)
	step := f.stepUpWith(admin)
	f.store.AddStoreRule(faultproxy.StoreRule{Operation: "TransactWriteItems", Table: f.table, Fault: faultproxy.DropAnswer})
	_, err := admin.Unseal(context.Background(), step)
	f.store.Clear()
	if err != nil {
		t.Fatalf("unseal with its store answer lost: %v", err)
	}
	if row := f.row(tn); row.Status != keyseal.StatusActive {
		t.Fatalf("tenant %s after the unseal, want active", row.Status)
	}
	if n := f.entries(tn, keyseal.ActionUnseal); n != 1 {
		t.Fatalf("%d unseal entries, want 1", n)
	}
	if n := f.countEvents("tenant.kms.unsealed", tn.ID); n != 1 {
		t.Fatalf("%d tenant.kms.unsealed events, want 1", n)
	}
}

// TestStoreLostAnswersOfStepUp: the step-up token's put and its use lose
// their answers once each (the SDK retries): the admin still gets a token,
// its audit entry exists, and the forced call accepts it (409 not_sealed
// is the unseal's own answer for an active tenant, after the token was
// spent), instead of 409 "already exists" and 401 "already used".
func TestStoreLostAnswersOfStepUp(t *testing.T) {
	f := newFaultyEnv(t, nil)
	tn := f.newTenant()
	admin := f.admin(tn.ID)
	before := f.entries(tn, keyseal.ActionStepUp)
	f.store.AddStoreRule(faultproxy.StoreRule{Operation: "PutItem", Table: f.table, Fault: faultproxy.DropAnswer, Times: 1})
	step := f.stepUpWith(admin)
	if n := f.entries(tn, keyseal.ActionStepUp); n != before+1 {
		t.Fatalf("%d step-up entries after one issue, want %d", n, before+1)
	}
	f.store.AddStoreRule(faultproxy.StoreRule{Operation: "UpdateItem", Table: f.table, Fault: faultproxy.DropAnswer, Times: 1})
	_, err := admin.Unseal(context.Background(), step)
	wantAPIError(t, err, http.StatusConflict, keyseal.ENOTSEALED)
	if n := f.store.Injected()[faultproxy.DropAnswer]; n != 2 {
		t.Fatalf("%d answers dropped, want 2", n)
	}
	// Spent once, by that call: a second use is refused.
	_, err = admin.Unseal(context.Background(), step)
	wantAPIError(t, err, http.StatusUnauthorized, keyseal.ESTEPUP)
}

// TestStoreUnavailableIs503: a store that throttles or fails every request
// answers agents and admins 503 store_unavailable with Retry-After, never
// 500.
func TestStoreUnavailableIs503(t *testing.T) {
	f := newFaultyEnv(t, nil)
	tn := f.newTenant()
	for _, fault := range []faultproxy.Fault{faultproxy.Throttle, faultproxy.ThroughputExceeded, faultproxy.ServerError} {
		t.Run(string(fault), func(t *testing.T) {
			f.tb = t
			f.store.AddStoreRule(faultproxy.StoreRule{Table: f.table, Fault: fault})
			defer f.store.Clear()
			r := f.session(tn).agentError(http.StatusServiceUnavailable, keyseal.EUNAVAILABLE)
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("agent 503 without Retry-After: %v", r.header)
			}
			_, err := f.admin(tn.ID).TenantKMS(context.Background())
			if ae := wantAPIError(t, err, http.StatusServiceUnavailable, keyseal.EUNAVAILABLE); ae.RetryAfter == "" {
				t.Fatalf("admin 503 without Retry-After: %+v", ae)
			}
		})
	}
}

// TestSealUnderStoreFaults: with 30% of store requests throttled, failed
// or losing their answer, while agents keep asking: the disabled key
// seals within a bounded number of sweeps, exactly one seal entry and one
// event exist, no request got a 500, and the chain verifies.
func TestSealUnderStoreFaults(t *testing.T) {
	f := newFaultyEnv(t, nil)
	tn := f.newTenant()
	f.session(tn).want(http.StatusCreated)
	f.disable(tn)
	f.storeFaults(0.3)
	var mu sync.Mutex
	statuses := map[int]int{}
	sweeps := 0
	for sweeps < 3 && f.row(tn).Status != keyseal.StatusSealed {
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				s := f.session(tn).status
				mu.Lock()
				statuses[s]++
				mu.Unlock()
			})
		}
		f.sweep()
		wg.Wait()
		sweeps++
	}
	injected := f.store.Injected()
	f.store.Clear()
	t.Logf("sealed after %d sweep(s); session statuses %v; faults injected %v", sweeps, statuses, injected)
	if row := f.row(tn); row.Status != keyseal.StatusSealed {
		t.Fatalf("not sealed after %d sweeps under 30%% store faults", sweeps)
	}
	if statuses[http.StatusInternalServerError] != 0 {
		t.Fatalf("%d sessions answered 500 under store faults: %v", statuses[http.StatusInternalServerError], statuses)
	}
	for s := range statuses {
		if s != http.StatusCreated && s != http.StatusServiceUnavailable {
			t.Fatalf("session answered %d under store faults: %v", s, statuses)
		}
	}
	if n := f.entries(tn, keyseal.ActionSeal); n != 1 {
		t.Fatalf("%d seal entries, want 1", n)
	}
	if n := f.countEvents("tenant.kms.sealed", tn.ID); n != 1 {
		t.Fatalf("%d tenant.kms.sealed events, want 1", n)
	}
	if r := must(f.admin(tn.ID).VerifyAudit(context.Background()))(t); !r.Valid {
		t.Fatalf("chain after the faults: %+v", r)
	}
}

// BenchmarkKillSwitchDrillStoreFaults is the kill-switch drill of
// BenchmarkKillSwitchDrill with 10% and 30% of keyseal's store requests
// throttled, failing with 500 or losing their answer after the write. It
// reports DisableKey -> sealed (the row, read past the proxy) and
// DisableKey -> the first 503 tenant_sealed an agent sees (store_unavailable
// 503s before it do not count: they are not the kill switch). Run it with
// `make drill-store` (KEYSEAL_DRILL_POLL_INTERVAL, default 30s, sets the
// cadence).
func BenchmarkKillSwitchDrillStoreFaults(b *testing.B) {
	for _, rate := range []struct {
		name string
		rate float64
	}{{"10pct", 0.1}, {"30pct", 0.3}} {
		b.Run(rate.name, func(b *testing.B) { drillStoreFaults(b, rate.rate) })
	}
}

func drillStoreFaults(b *testing.B, rate float64) {
	interval := drillInterval(b)
	f := newFaultyEnv(b, map[string]string{"KEYSEAL_POLL_INTERVAL": interval.String()})
	var toSealed, to503, worst time.Duration
	for b.Loop() {
		tn := f.newTenant()
		f.session(tn).want(http.StatusCreated)
		f.storeFaults(rate)
		time.Sleep(rand.N(interval))
		start := time.Now()
		f.disable(tn)
		var sealedAt, first503 time.Time
		for sealedAt.IsZero() || first503.IsZero() {
			if first503.IsZero() {
				if r := f.session(tn); r.status == http.StatusServiceUnavailable && agentType(r) == keyseal.ESEALED {
					first503 = time.Now()
				}
			}
			if sealedAt.IsZero() {
				if t, err := f.direct.GetTenant(context.Background(), tn.ID); err == nil && t.Status == keyseal.StatusSealed {
					sealedAt = time.Now()
				}
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("not sealed within 5 minutes")
			}
			time.Sleep(100 * time.Millisecond)
		}
		f.store.Clear()
		toSealed += sealedAt.Sub(start)
		to503 += first503.Sub(start)
		worst = max(worst, first503.Sub(start))
	}
	reportDrill(b, toSealed, to503, worst)
}

func agentType(r *reply) string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

// drillInterval is the drills' poll interval: KEYSEAL_DRILL_POLL_INTERVAL,
// default the production 30s.
func drillInterval(b *testing.B) time.Duration {
	raw := os.Getenv("KEYSEAL_DRILL_POLL_INTERVAL")
	if raw == "" {
		raw = "30s"
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
