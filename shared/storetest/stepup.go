package storetest

import (
	"sync"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func stepUpTests() []test {
	return []test{
		{"StepUp/RoundTrip", testStepUpRoundTrip},
		{"StepUp/Use", testStepUpUse},
		{"StepUp/ConcurrentUse", testStepUpConcurrentUse},
	}
}

func testStepUpRoundTrip(t *testing.T, s keyseal.Store) {
	tok := newStepUp(keyHash("step-up-1"))
	if err := s.PutStepUp(t.Context(), tok); err != nil {
		t.Fatalf("PutStepUp: %v", err)
	}
	got, err := s.GetStepUp(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("GetStepUp: %v", err)
	}
	requireEqual(t, "GetStepUp", got, &tok)

	dup := newStepUp(tok.Hash)
	dup.Subject = "admin:mallory@example.com"
	dup.Used = true
	requireCode(t, s.PutStepUp(t.Context(), dup), keyseal.ECONFLICT, "PutStepUp(duplicate hash)")
	got, err = s.GetStepUp(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("GetStepUp after duplicate: %v", err)
	}
	requireEqual(t, "GetStepUp after duplicate", got, &tok)

	_, err = s.GetStepUp(t.Context(), keyHash("unknown token"))
	requireCode(t, err, keyseal.ENOTFOUND, "GetStepUp(unknown)")
}

func testStepUpUse(t *testing.T, s keyseal.Store) {
	tok := newStepUp(keyHash("step-up-1"))
	other := newStepUp(keyHash("step-up-2"))
	for _, tk := range []keyseal.StepUpToken{tok, other} {
		if err := s.PutStepUp(t.Context(), tk); err != nil {
			t.Fatalf("PutStepUp: %v", err)
		}
	}
	if err := s.UseStepUp(t.Context(), tok.Hash); err != nil {
		t.Fatalf("UseStepUp: %v", err)
	}
	used := tok
	used.Used = true
	requireStepUp(t, s, used)
	requireStepUp(t, s, other) // using one token leaves others alone

	requireCode(t, s.UseStepUp(t.Context(), tok.Hash), keyseal.ECONFLICT, "UseStepUp(second use)")
	requireStepUp(t, s, used)
	requireCode(t, s.UseStepUp(t.Context(), keyHash("unknown token")), keyseal.ENOTFOUND, "UseStepUp(unknown)")
}

func testStepUpConcurrentUse(t *testing.T, s keyseal.Store) {
	tok := newStepUp(keyHash("step-up-1"))
	if err := s.PutStepUp(t.Context(), tok); err != nil {
		t.Fatalf("PutStepUp: %v", err)
	}
	const workers = 10
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { errs[i] = s.UseStepUp(t.Context(), tok.Hash) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch keyseal.ErrorCode(err) {
		case "":
			wins++
		case keyseal.ECONFLICT:
		default:
			t.Fatalf("worker %d: %v, want nil or %s", i, err, keyseal.ECONFLICT)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent UseStepUp calls succeeded, want exactly 1", wins)
	}
	tok.Used = true
	requireStepUp(t, s, tok)
}

// requireStepUp fails unless the stored token equals want.
func requireStepUp(t *testing.T, s keyseal.Store, want keyseal.StepUpToken) {
	t.Helper()
	got, err := s.GetStepUp(t.Context(), want.Hash)
	if err != nil {
		t.Fatalf("GetStepUp: %v", err)
	}
	requireEqual(t, "GetStepUp", got, &want)
}
