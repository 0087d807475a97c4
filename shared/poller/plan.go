package poller

import (
	"cmp"
	"slices"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Plan splits the poll shards into the fewest groups (at most maxGroups)
// whose estimated sweeps each fit budget, balanced by measured work. The
// estimate is Little's law on the last measurement: a sweep of shards
// whose checks took W in total, with c checks in flight, takes about
// W / c, so n groups of c each are needed for W / (n c) <= budget. The
// measured check durations already hold what slows one invocation down
// (KMS latency, the store, a small Lambda's CPU), and they do not depend
// on how the shards were grouped (each invocation runs c checks at once
// whatever its share), so the estimate carries over from one plan to the
// next. Shards are placed heaviest first on the least loaded group (LPT);
// each group lists its shards in ascending order, and group 0 is the
// scheduled invocation's own. Shards never measured weigh nothing: with no
// measurement at all (a new deployment) the plan is one group, whose
// sweep records the first measurement.
func Plan(stats []keyseal.ShardStats, concurrency int, budget time.Duration, maxGroups int) [][]int {
	var work [keyseal.PollShards]time.Duration
	var total time.Duration
	for _, st := range stats {
		if st.Shard >= 0 && st.Shard < keyseal.PollShards && st.Work > 0 {
			work[st.Shard] = st.Work
			total += st.Work
		}
	}
	n := 1
	if capacity := time.Duration(max(concurrency, 1)) * budget; capacity > 0 {
		n = int((total + capacity - 1) / capacity)
	}
	n = max(1, min(n, maxGroups, keyseal.PollShards))
	// Shards are the granule: n groups may not place them so that each
	// fits (16 even shards in 9 groups leave 7 groups with two), so the
	// plan grows until every group fits or no more groups are allowed.
	for {
		groups, heaviest := place(work, n)
		if heaviest <= time.Duration(max(concurrency, 1))*budget || n >= min(maxGroups, keyseal.PollShards) {
			return groups
		}
		n++
	}
}

// place puts the shards into n groups, heaviest first on the least loaded
// group, and returns the groups and the heaviest group's work.
func place(work [keyseal.PollShards]time.Duration, n int) ([][]int, time.Duration) {
	order := make([]int, keyseal.PollShards)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(work[b], work[a]) })
	groups := make([][]int, n)
	load := make([]time.Duration, n)
	for _, shard := range order {
		g := 0
		for i := range load {
			if load[i] < load[g] || (load[i] == load[g] && len(groups[i]) < len(groups[g])) {
				g = i
			}
		}
		groups[g] = append(groups[g], shard)
		load[g] += work[shard]
	}
	for _, g := range groups {
		slices.Sort(g)
	}
	return groups, slices.Max(load)
}
