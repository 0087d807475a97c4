package storetest

import (
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// RunPollStats is the conformance suite of keyseal.PollStats, run by the
// adapters that have it (the DynamoDB store and memstore) against a fresh
// store per subtest.
func RunPollStats(t *testing.T, newStats func(t *testing.T) keyseal.PollStats) {
	t.Helper()
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	t.Run("PollStats/Empty", func(t *testing.T) {
		got, err := newStats(t).ShardStats(t.Context())
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("ShardStats of an empty store: %v, %v; want an empty slice", got, err)
		}
	})
	t.Run("PollStats/PutReplacesOnlyNamedShards", func(t *testing.T) {
		s := newStats(t)
		first := []keyseal.ShardStats{
			{Shard: 7, Tenants: 120, Work: 9*time.Second + 5*time.Millisecond, MeasuredAt: at},
			{Shard: 0, Tenants: 3, Work: 240 * time.Millisecond, MeasuredAt: at},
			{Shard: 15, Tenants: 0, Work: 0, MeasuredAt: at},
		}
		if err := s.PutShardStats(t.Context(), first); err != nil {
			t.Fatal(err)
		}
		// Another group records shard 7 again and shard 9: shards 0 and 15 stay.
		later := at.Add(30 * time.Second)
		if err := s.PutShardStats(t.Context(), []keyseal.ShardStats{
			{Shard: 9, Tenants: 1, Work: time.Millisecond, MeasuredAt: later},
			{Shard: 7, Tenants: 121, Work: 10 * time.Second, MeasuredAt: later},
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutShardStats(t.Context(), nil); err != nil {
			t.Fatalf("PutShardStats(nil): %v", err)
		}
		got, err := s.ShardStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		requireEqual(t, "shard stats", got, []keyseal.ShardStats{
			{Shard: 0, Tenants: 3, Work: 240 * time.Millisecond, MeasuredAt: at},
			{Shard: 7, Tenants: 121, Work: 10 * time.Second, MeasuredAt: later},
			{Shard: 9, Tenants: 1, Work: time.Millisecond, MeasuredAt: later},
			{Shard: 15, Tenants: 0, Work: 0, MeasuredAt: at},
		})
	})
	t.Run("PollStats/ShardOutOfRange", func(t *testing.T) {
		s := newStats(t)
		for _, shard := range []int{-1, keyseal.PollShards} {
			err := s.PutShardStats(t.Context(), []keyseal.ShardStats{{Shard: 1, MeasuredAt: at}, {Shard: shard, MeasuredAt: at}})
			requireCode(t, err, keyseal.EINVALID, "PutShardStats out of range")
		}
		if got, err := s.ShardStats(t.Context()); err != nil || len(got) != 0 {
			t.Fatalf("a refused put recorded %v (%v)", got, err)
		}
	})
}
