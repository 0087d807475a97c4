package memstore

import (
	"context"
	"maps"
	"slices"

	"github.com/keyseal/keyseal/shared/keyseal"
)

var _ keyseal.PollStats = (*Store)(nil)

// PutShardStats implements keyseal.PollStats.
func (s *Store) PutShardStats(ctx context.Context, stats []keyseal.ShardStats) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, st := range stats {
		if st.Shard < 0 || st.Shard >= keyseal.PollShards {
			return keyseal.Errorf(keyseal.EINVALID, "poll shard %d out of range 0-%d", st.Shard, keyseal.PollShards-1)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shardStats == nil {
		s.shardStats = map[int]keyseal.ShardStats{}
	}
	for _, st := range stats {
		s.shardStats[st.Shard] = st
	}
	return nil
}

// ShardStats implements keyseal.PollStats.
func (s *Store) ShardStats(ctx context.Context) ([]keyseal.ShardStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []keyseal.ShardStats{}
	for _, shard := range slices.Sorted(maps.Keys(s.shardStats)) {
		out = append(out, s.shardStats[shard])
	}
	return out, nil
}
