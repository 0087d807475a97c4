package boltstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/storetest"
)

// openTemp opens a store in a fresh temporary directory, closed when the
// test ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	return openTempAt(t, filepath.Join(t.TempDir(), "keyseal.db"))
}

// openTempAt opens a store at path, closed when the test ends.
func openTempAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) keyseal.Store { return openTemp(t) },
		// Tamper and DeleteAudit edit the bolt file underneath the Store
		// API, the way an attacker with the file would, leaving the head
		// untouched.
		Tamper: func(t *testing.T, ks keyseal.Store, tenantID string, seq int64, edit func(*keyseal.AuditEntry)) {
			t.Helper()
			err := ks.(*Store).db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketAudit).Bucket([]byte(tenantID))
				if b == nil {
					return errors.New("no audit bucket")
				}
				raw := b.Get(seqKey(seq))
				if raw == nil {
					return errors.New("no such entry")
				}
				var e keyseal.AuditEntry
				if err := json.Unmarshal(raw, &e); err != nil {
					return err
				}
				edit(&e)
				return putJSON(b, seqKey(seq), e)
			})
			if err != nil {
				t.Fatalf("tamper with %s/%d: %v", tenantID, seq, err)
			}
		},
		DeleteAudit: func(t *testing.T, ks keyseal.Store, tenantID string, seq int64) {
			t.Helper()
			err := ks.(*Store).db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketAudit).Bucket([]byte(tenantID))
				if b == nil || b.Get(seqKey(seq)) == nil {
					return errors.New("no such entry")
				}
				return b.Delete(seqKey(seq))
			})
			if err != nil {
				t.Fatalf("delete %s/%d: %v", tenantID, seq, err)
			}
		},
		Corrupt: func(t *testing.T, ks keyseal.Store, tenantID string, seq int64) {
			t.Helper()
			err := ks.(*Store).db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketAudit).Bucket([]byte(tenantID))
				if b == nil || b.Get(seqKey(seq)) == nil {
					return errors.New("no such entry")
				}
				return b.Put(seqKey(seq), []byte(`{"seq": "three", "ts": 7`)) // not JSON, and seq a string
			})
			if err != nil {
				t.Fatalf("corrupt %s/%d: %v", tenantID, seq, err)
			}
		},
		Anchored: func(t *testing.T, a *audit.Anchor) keyseal.Store {
			t.Helper()
			s, err := Open(filepath.Join(t.TempDir(), "keyseal.db"), WithAnchor(a))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		SetHead: func(t *testing.T, ks keyseal.Store, tenantID string, head keyseal.AuditHead) {
			t.Helper()
			err := ks.(*Store).db.Update(func(tx *bolt.Tx) error {
				if head == (keyseal.AuditHead{}) {
					return tx.Bucket(bucketHeads).Delete([]byte(tenantID))
				}
				return putJSON(tx.Bucket(bucketHeads), []byte(tenantID), head)
			})
			if err != nil {
				t.Fatalf("set head of %s: %v", tenantID, err)
			}
		},
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyseal.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	created := time.Date(2025, 6, 1, 12, 0, 0, 123000, time.UTC)
	tn := &keyseal.Tenant{ID: "tenant-a", Key: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "k1", Access: map[string]string{"role_arn": "r"}},
		Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: created, UpdatedAt: created}
	v1 := keyseal.TMKVersion{TenantID: "tenant-a", Version: 1, Wrapped: []byte("wrapped"), Key: tn.Key,
		SigningPublicKey: []byte("pub"), CreatedAt: created}
	rec := keyseal.AuditRecord{At: created, Action: keyseal.ActionTenantProvision, Severity: keyseal.SeverityInfo, Actor: "system"}
	if err := s.CreateTenant(ctx, tn, v1, rec); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	agent := &keyseal.Agent{ID: "agent-1", TenantID: "tenant-a", Name: "ci", KeyHash: "hash-1", CreatedAt: created, CreatedBy: "admin"}
	if err := s.CreateAgent(ctx, agent, keyseal.AuditRecord{At: created, Action: keyseal.ActionAgentCreate, Severity: keyseal.SeverityInfo, Actor: "admin"}); err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}
	if err := s.PutStepUp(ctx, keyseal.StepUpToken{Hash: "step-1", Subject: "admin", TenantID: "tenant-a", ExpiresAt: created}); err != nil {
		t.Fatalf("PutStepUp: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.GetTenant(ctx, "tenant-a")
	if err != nil {
		t.Fatalf("GetTenant after reopen: %v", err)
	}
	if got.Revision != 1 || !got.Key.Equal(tn.Key) || !got.CreatedAt.Equal(created) {
		t.Fatalf("tenant after reopen = %+v, want revision 1, key %+v, created %s", got, tn.Key, created)
	}
	if vs, err := s.Versions(ctx, "tenant-a"); err != nil || len(vs) != 1 || string(vs[0].Wrapped) != "wrapped" {
		t.Fatalf("Versions after reopen = %+v, %v", vs, err)
	}
	if a, err := s.AgentByKeyHash(ctx, "hash-1"); err != nil || a.ID != "agent-1" || a.KeyHash != "hash-1" {
		t.Fatalf("AgentByKeyHash after reopen = %+v, %v", a, err)
	}
	if err := s.UseStepUp(ctx, "step-1"); err != nil {
		t.Fatalf("UseStepUp after reopen: %v", err)
	}
	// The chain continues where it stopped: the head survived.
	e, err := s.AppendAudit(ctx, "tenant-a", keyseal.AuditRecord{At: created, Action: keyseal.ActionSeal, Severity: keyseal.SeverityCritical, Actor: "poller"})
	if err != nil {
		t.Fatalf("AppendAudit after reopen: %v", err)
	}
	if e.Seq != 3 {
		t.Fatalf("first entry after reopen has seq %d, want 3", e.Seq)
	}
	res, err := audit.VerifyChain(ctx, s, "tenant-a")
	if err != nil || !res.Valid || res.Entries != 3 {
		t.Fatalf("VerifyChain after reopen = %+v, %v; want valid with 3 entries", res, err)
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyseal.db")
	first, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// bolt's lock is an flock on the file, which a second descriptor in the
	// same process cannot take either, so this stands in for a second
	// process.
	second, err := Open(path)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), "is in use by another keyseal process") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open error = %q, want it to name the file and say it is in use by another keyseal process", err)
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("second Open error %v does not wrap bolt's ErrTimeout", err)
	}

	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	third, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	third.Close()
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyseal.db")
	openTempAt(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("store file mode %o, want no group or other access", perm)
	}
}

func TestOpenMissingDirFails(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing", "keyseal.db"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open in a missing directory: %v, want a not-exist error", err)
	}
}

func TestPingAfterClose(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keyseal.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	s.Close()
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping on a closed store succeeded")
	}
}

// TestRejectsForeignVersion checks that a TMK version labelled with another
// tenant is refused and the whole change is dropped.
func TestRejectsForeignVersion(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tn := &keyseal.Tenant{ID: "tenant-a", Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: now, UpdatedAt: now}
	v1 := keyseal.TMKVersion{TenantID: "tenant-a", Version: 1, Wrapped: []byte("w"), CreatedAt: now}
	rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionTenantProvision, Severity: keyseal.SeverityInfo, Actor: "system"}
	if err := s.CreateTenant(ctx, tn, v1, rec); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	foreign := keyseal.TMKVersion{TenantID: "tenant-b", Version: 2, Wrapped: []byte("x"), CreatedAt: now}
	upd := tn.Clone()
	upd.ActiveVersion = 2
	err := s.UpdateTenant(ctx, upd, keyseal.Change{NewVersions: []keyseal.TMKVersion{foreign}, Audit: &rec})
	if code := keyseal.ErrorCode(err); code != keyseal.EINVALID {
		t.Fatalf("UpdateTenant with a foreign version: %v, want %s", err, keyseal.EINVALID)
	}
	if upd.Revision != 1 {
		t.Fatalf("rejected UpdateTenant moved t.Revision to %d", upd.Revision)
	}
	if got, err := s.GetTenant(ctx, "tenant-a"); err != nil || got.ActiveVersion != 1 || got.Revision != 1 {
		t.Fatalf("tenant after rejected update = %+v, %v", got, err)
	}
	if vs, err := s.Versions(ctx, "tenant-a"); err != nil || len(vs) != 1 {
		t.Fatalf("Versions(tenant-a) after rejected update = %d versions, %v; want 1", len(vs), err)
	}
	if vs, err := s.Versions(ctx, "tenant-b"); err != nil || len(vs) != 0 {
		t.Fatalf("Versions(tenant-b) after rejected update = %d versions, %v; want none", len(vs), err)
	}
	if entries, err := s.ListAudit(ctx, "tenant-a", keyseal.AuditQuery{}); err != nil || len(entries) != 1 {
		t.Fatalf("audit after rejected update = %d entries, %v; want 1", len(entries), err)
	}
}
