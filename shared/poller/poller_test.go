package poller_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/poller"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

func handler(t *testing.T, tenants ...string) *poller.Handler {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lk, _ := localkms.Open("")
	platform, _ := lk.CreateKey()
	svc := tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: lk}, tenantkms.Options{
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}})
	for _, id := range tenants {
		if _, err := svc.Provision(context.Background(), id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return &poller.Handler{Tenants: svc, Interval: 10 * time.Millisecond, Sweeps: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestScheduledEventSweepsTwice: a plain EventBridge scheduled event sweeps
// every shard, twice.
func TestScheduledEventSweepsTwice(t *testing.T) {
	h := handler(t, "acme", "globex", "initech")
	ev := json.RawMessage(`{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)
	res, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sweeps) != 2 {
		t.Fatalf("%d sweeps, want 2", len(res.Sweeps))
	}
	for _, s := range res.Sweeps {
		if s.Tenants != 3 || s.Outcomes[tenantkms.OutcomeHealthy] != 3 {
			t.Fatalf("sweep: %+v", s)
		}
	}
}

// TestShardInput: the rule's constant input can restrict a sweep to some
// shards; a bad input is logged and sweeps nothing rather than failing the
// invocation (which EventBridge would retry into the next minute).
func TestShardInput(t *testing.T) {
	h := handler(t, "acme")
	shard := keyseal.ShardOf("acme")
	other := (shard + 1) % keyseal.PollShards
	in, _ := json.Marshal(poller.Input{Shards: []int{other}})
	res, err := h.Handle(context.Background(), in)
	if err != nil || res.Sweeps[0].Tenants != 0 {
		t.Fatalf("other shard: %+v %v", res, err)
	}
	in, _ = json.Marshal(poller.Input{Shards: []int{shard}})
	if res, err = h.Handle(context.Background(), in); err != nil || res.Sweeps[0].Tenants != 1 {
		t.Fatalf("own shard: %+v %v", res, err)
	}
	if res, err = h.Handle(context.Background(), json.RawMessage(`{"shards":[99]}`)); err != nil || len(res.Sweeps) != 0 {
		t.Fatalf("bad shard: %+v %v", res, err)
	}
}

// TestCanceledInvocationStops: a Lambda deadline between sweeps ends the
// invocation cleanly.
func TestCanceledInvocationStops(t *testing.T) {
	h := handler(t, "acme")
	h.Interval = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := h.Handle(ctx, nil)
	if err != nil || len(res.Sweeps) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}
