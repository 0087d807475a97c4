package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

var _ keyseal.PollStats = (*Store)(nil)

// The poll shard measurements' item (doc.go).
const (
	pollerPK      = "poller"
	skShardStats  = "shards"
	shardStatsPre = "s"
)

// shardStatsValue is one shard's attribute of the measurements item.
type shardStatsValue struct {
	Tenants    int    `dynamodbav:"tenants"`
	WorkNS     int64  `dynamodbav:"work_ns"`
	MeasuredAt string `dynamodbav:"measured_at"`
}

// PutShardStats implements keyseal.PollStats: one UpdateItem setting the
// named shards' attributes, so groups recording different shards at once
// never overwrite each other.
func (s *Store) PutShardStats(ctx context.Context, stats []keyseal.ShardStats) error {
	if len(stats) == 0 {
		return nil
	}
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	sets := make([]string, 0, len(stats))
	for i, st := range stats {
		if st.Shard < 0 || st.Shard >= keyseal.PollShards {
			return keyseal.Errorf(keyseal.EINVALID, "poll shard %d out of range 0-%d", st.Shard, keyseal.PollShards-1)
		}
		av, err := attributevalue.Marshal(shardStatsValue{Tenants: st.Tenants, WorkNS: int64(st.Work), MeasuredAt: formatTime(st.MeasuredAt)})
		if err != nil {
			return fmt.Errorf("dynamostore: put shard stats: %w", err)
		}
		n, v := "#s"+strconv.Itoa(i), ":s"+strconv.Itoa(i)
		names[n] = fmt.Sprintf("%s%02d", shardStatsPre, st.Shard)
		values[v] = av
		sets = append(sets, n+" = "+v)
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(pollerPK, skShardStats),
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("dynamostore: put shard stats: %w", err)
	}
	return nil
}

// ShardStats implements keyseal.PollStats, with an eventually consistent
// read: the plan it feeds is an estimate, and half the price.
func (s *Store) ShardStats(ctx context.Context) ([]keyseal.ShardStats, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pollerPK, skShardStats)})
	if err != nil {
		return nil, fmt.Errorf("dynamostore: shard stats: %w", err)
	}
	stats := []keyseal.ShardStats{}
	for shard := range keyseal.PollShards {
		av, ok := out.Item[fmt.Sprintf("%s%02d", shardStatsPre, shard)]
		if !ok {
			continue
		}
		var v shardStatsValue
		if err := attributevalue.Unmarshal(av, &v); err != nil {
			return nil, fmt.Errorf("dynamostore: shard stats: decode shard %d: %w", shard, err)
		}
		at, err := parseTime("measured_at", v.MeasuredAt)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: shard stats: shard %d: %w", shard, err)
		}
		stats = append(stats, keyseal.ShardStats{Shard: shard, Tenants: v.Tenants, Work: time.Duration(v.WorkNS), MeasuredAt: at})
	}
	return stats, nil
}
