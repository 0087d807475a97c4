package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/storetest"
)

func TestDeliveryQueueConformance(t *testing.T) {
	storetest.RunDeliveryQueue(t, func(t *testing.T) keyseal.DeliveryQueue { return openTemp(t) })
}

// TestDeliveryQueueSurvivesReopen: pending, dead and done jobs are in the
// file: after a reopen the pending job is due, the dead one listed, and the
// done one's id still refused.
func TestDeliveryQueueSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyseal.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Enqueue(ctx, keyseal.QueuedJob{ID: "p", Due: now, Body: []byte("{}")}, keyseal.QueuedJob{ID: "d", Due: now},
		keyseal.QueuedJob{ID: "x", Due: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "d", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Bury(ctx, "x", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openTempAt(t, path)
	if err := r.Enqueue(ctx, keyseal.QueuedJob{ID: "d", Due: now}); err != nil {
		t.Fatal(err)
	}
	due, err := r.Due(ctx, now, 0)
	if err != nil || len(due) != 1 || due[0].ID != "p" || string(due[0].Body) != "{}" {
		t.Fatalf("due after reopen: %+v, %v; want only p", due, err)
	}
	if dead, err := r.Dead(ctx, 0); err != nil || len(dead) != 1 || dead[0].Reason != "gone" {
		t.Fatalf("dead after reopen: %+v, %v", dead, err)
	}
}

// TestDeliveryQueueForgetsOldDoneJobs: a job done more than
// DeliveryDoneKept ago is pruned, so the done index does not grow forever.
func TestDeliveryQueueForgetsOldDoneJobs(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if err := s.Enqueue(ctx, keyseal.QueuedJob{ID: "old", Due: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "old", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return pruneDone(tx, time.Now().Add(keyseal.DeliveryDoneKept+time.Minute)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, keyseal.QueuedJob{ID: "old", Due: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, time.Now(), 0); len(due) != 1 {
		t.Fatalf("a job done long ago is still remembered: due %+v", due)
	}
}
