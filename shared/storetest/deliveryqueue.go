package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// RunDeliveryQueue is the conformance suite of keyseal.DeliveryQueue
// adapters (the embedded bbolt store, memstore.DeliveryQueue). newQueue
// returns an empty queue; it is called once per subtest.
func RunDeliveryQueue(t *testing.T, newQueue func(t *testing.T) keyseal.DeliveryQueue) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	job := func(id string, due time.Time) keyseal.QueuedJob {
		return keyseal.QueuedJob{ID: id, Due: due, Body: []byte(`{"job":"` + id + `"}`)}
	}
	ids := func(js []keyseal.QueuedJob) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	due := func(t *testing.T, q keyseal.DeliveryQueue, now time.Time, limit int) []string {
		t.Helper()
		js, err := q.Due(ctx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ids(js)
	}
	want := func(t *testing.T, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, q keyseal.DeliveryQueue)
	}{
		{"DueEarliestFirstAndOnlyWhenDue", func(t *testing.T, q keyseal.DeliveryQueue) {
			if err := q.Enqueue(ctx, job("c", t0.Add(2*time.Second)), job("a", t0), job("b", t0.Add(time.Second))); err != nil {
				t.Fatal(err)
			}
			want(t, due(t, q, t0.Add(-time.Nanosecond), 0))
			want(t, due(t, q, t0.Add(time.Second), 0), "a", "b")
			want(t, due(t, q, t0.Add(time.Hour), 2), "a", "b")
			js, err := q.Due(ctx, t0.Add(time.Hour), 0)
			if err != nil || len(js) != 3 || string(js[2].Body) != `{"job":"c"}` || !js[2].Due.Equal(t0.Add(2*time.Second)) {
				t.Fatalf("due jobs %+v, %v: want a, b, c with body and due time", js, err)
			}
		}},
		{"EnqueueIsIdempotentPerID", func(t *testing.T, q keyseal.DeliveryQueue) {
			if err := q.Enqueue(ctx, job("e1/wh1/1", t0)); err != nil {
				t.Fatal(err)
			}
			// A redone fan-out: the same id again, pending, done and dead.
			if err := q.Enqueue(ctx, job("e1/wh1/1", t0.Add(-time.Hour)), job("e1/wh2/1", t0)); err != nil {
				t.Fatal(err)
			}
			want(t, due(t, q, t0, 0), "e1/wh1/1", "e1/wh2/1")
			if err := q.Complete(ctx, "e1/wh1/1", nil); err != nil {
				t.Fatal(err)
			}
			if err := q.Bury(ctx, "e1/wh2/1", "no attempt left"); err != nil {
				t.Fatal(err)
			}
			if err := q.Enqueue(ctx, job("e1/wh1/1", t0), job("e1/wh2/1", t0)); err != nil {
				t.Fatal(err)
			}
			want(t, due(t, q, t0.Add(time.Hour), 0))
		}},
		{"CompleteEnqueuesTheRetryInItsPlace", func(t *testing.T, q keyseal.DeliveryQueue) {
			if err := q.Enqueue(ctx, job("e1/wh1/1", t0)); err != nil {
				t.Fatal(err)
			}
			next := job("e1/wh1/2", t0.Add(5*time.Second))
			if err := q.Complete(ctx, "e1/wh1/1", &next); err != nil {
				t.Fatal(err)
			}
			want(t, due(t, q, t0.Add(time.Second), 0))
			want(t, due(t, q, t0.Add(5*time.Second), 0), "e1/wh1/2")
			for _, err := range []error{q.Complete(ctx, "e1/wh1/1", nil), q.Complete(ctx, "nope", nil),
				q.Reschedule(ctx, "e1/wh1/1", t0), q.Bury(ctx, "nope", "x")} {
				if keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
					t.Fatalf("settling a job that is not pending: %v, want ENOTFOUND", err)
				}
			}
		}},
		{"RescheduleMovesTheDueTime", func(t *testing.T, q keyseal.DeliveryQueue) {
			if err := q.Enqueue(ctx, job("a", t0), job("b", t0.Add(time.Second))); err != nil {
				t.Fatal(err)
			}
			if err := q.Reschedule(ctx, "a", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			want(t, due(t, q, t0.Add(time.Second), 0), "b")
			want(t, due(t, q, t0.Add(time.Minute), 0), "b", "a")
		}},
		{"BuriedJobsAreKeptNotDue", func(t *testing.T, q keyseal.DeliveryQueue) {
			if err := q.Enqueue(ctx, job("a", t0), job("b", t0)); err != nil {
				t.Fatal(err)
			}
			if err := q.Bury(ctx, "b", "no attempt left in the retry window"); err != nil {
				t.Fatal(err)
			}
			want(t, due(t, q, t0, 0), "a")
			dead, err := q.Dead(ctx, 0)
			if err != nil || len(dead) != 1 || dead[0].ID != "b" || dead[0].Reason != "no attempt left in the retry window" ||
				string(dead[0].Body) != `{"job":"b"}` {
				t.Fatalf("dead %+v, %v", dead, err)
			}
		}},
		{"EnqueueWithoutIDIsInvalidAllOrNothing", func(t *testing.T, q keyseal.DeliveryQueue) {
			err := q.Enqueue(ctx, job("a", t0), keyseal.QueuedJob{Due: t0})
			if keyseal.ErrorCode(err) != keyseal.EINVALID {
				t.Fatalf("enqueue without id: %v, want EINVALID", err)
			}
			want(t, due(t, q, t0, 0))
			if err := q.Enqueue(ctx, job("a", t0)); err != nil {
				t.Fatal(err)
			}
			if err := q.Complete(ctx, "a", &keyseal.QueuedJob{}); keyseal.ErrorCode(err) != keyseal.EINVALID {
				t.Fatalf("complete with a next job without id: %v, want EINVALID", err)
			}
			want(t, due(t, q, t0, 0), "a")
		}},
		{"CanceledContext", func(t *testing.T, q keyseal.DeliveryQueue) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			if err := q.Enqueue(c, job("a", t0)); err == nil {
				t.Fatal("enqueue with a canceled context succeeded")
			}
			want(t, due(t, q, t0, 0))
		}},
	} {
		t.Run("DeliveryQueue/"+tc.name, func(t *testing.T) { tc.fn(t, newQueue(t)) })
	}
}
