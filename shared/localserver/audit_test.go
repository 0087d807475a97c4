package localserver_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"

	"github.com/keyseal/keyseal/shared/localserver"
)

// addAgents makes n audited writes.
func addAgents(t *testing.T, s *localserver.Server, prefix string, n int) {
	t.Helper()
	for i := range n {
		if r := do(t, s, http.MethodPost, "/admin/agents", bearer(s.Credentials.AdminToken), fmt.Sprintf(`{"name":"%s-%d"}`, prefix, i)); r.status != http.StatusCreated {
			t.Fatalf("create agent: %d %s", r.status, r.raw)
		}
	}
}

// copyDir copies the regular files of src into dst (created).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDevModeRolledBackDataDir is an attacker (or a careless restore)
// putting back an older copy of the dev data dir: the chain and its
// signed head are genuine but old. Verify alone cannot tell; verify
// against the checkpoint the auditor saved later answers truncated.
func TestDevModeRolledBackDataDir(t *testing.T) {
	dir := t.TempDir()
	s, stop := startServer(t, dir, nil, localserver.Options{})
	addAgents(t, s, "early", 2)
	stop()
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(t, dir, backup)

	s, stop = startServer(t, dir, nil, localserver.Options{})
	admin := bearer(s.Credentials.AdminToken)
	addAgents(t, s, "late", 3)
	cp := do(t, s, http.MethodGet, "/admin/audit/checkpoint", admin, "")
	if cp.status != http.StatusOK {
		t.Fatalf("GET checkpoint: %d %s", cp.status, cp.raw)
	}
	saved := cp.body["checkpoint"].(string)
	size := int64(cp.body["size"].(float64))
	key := do(t, s, http.MethodGet, "/admin/audit/checkpoint-key", admin, "")
	if key.status != http.StatusOK {
		t.Fatalf("GET checkpoint-key: %d %s", key.status, key.raw)
	}
	// An auditor checks the checkpoint with the published key alone.
	v, err := note.NewVerifier(key.body["verifier_key"].(string))
	if err != nil {
		t.Fatalf("verifier key %v: %v", key.body["verifier_key"], err)
	}
	if _, err := note.Open([]byte(saved), note.VerifierList(v)); err != nil {
		t.Fatalf("saved checkpoint does not open with the verifier key: %v", err)
	}
	body, _ := json.Marshal(map[string]string{"checkpoint": saved})
	if r := do(t, s, http.MethodPost, "/admin/audit/verify", admin, string(body)); r.status != http.StatusOK || r.body["valid"] != true {
		t.Fatalf("POST verify before the rollback: %d %s", r.status, r.raw)
	}
	stop()

	copyDir(t, backup, dir) // the rollback
	s, _ = startServer(t, dir, nil, localserver.Options{})
	if r := do(t, s, http.MethodGet, "/admin/audit/verify", admin, ""); r.status != http.StatusOK || r.body["valid"] != true {
		t.Fatalf("GET verify of the rolled-back chain: %d %s (alone it is a genuine, shorter chain)", r.status, r.raw)
	}
	r := do(t, s, http.MethodPost, "/admin/audit/verify", admin, string(body))
	if r.status != http.StatusOK || r.body["valid"] != false || r.body["reason"] != "truncated" || int64(r.body["checkpoint_size"].(float64)) != size {
		t.Fatalf("POST verify of the rolled-back chain: %d %s, want valid false, reason truncated", r.status, r.raw)
	}
}

// TestCheckpointVerifyBadInput: the body is strict, and text that is not a
// signed note is a 400, not a verdict.
func TestCheckpointVerifyBadInput(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	cp := do(t, s, http.MethodGet, "/admin/audit/checkpoint", admin, "").body["checkpoint"].(string)
	good, _ := json.Marshal(map[string]string{"checkpoint": cp})
	for _, body := range []string{"", "{}", `{"checkpoint": ""}`, `{"checkpoint": 7}`, `{"checkpoint": "junk"}`,
		strings.Replace(string(good), `{"checkpoint"`, `{"extra": 1, "checkpoint"`, 1)} {
		r := do(t, s, http.MethodPost, "/admin/audit/verify", admin, body)
		if r.status != http.StatusBadRequest || r.code() != "invalid_request" {
			t.Errorf("POST verify %s: %d %s, want 400 invalid_request", body, r.status, r.raw)
		}
	}
	if r := do(t, s, http.MethodPost, "/admin/audit/verify", nil, string(good)); r.status != http.StatusUnauthorized {
		t.Errorf("POST verify without a token: %d %s", r.status, r.raw)
	}
}

// TestDevModeCorruptEntry: a garbled entry in the bolt file is reported by
// verify (200, reason corrupt) and marked in the listing, never a 500.
func TestDevModeCorruptEntry(t *testing.T) {
	dir := t.TempDir()
	s, stop := startServer(t, dir, nil, localserver.Options{})
	addAgents(t, s, "a", 3)
	tenant := s.Credentials.TenantID
	admin := bearer(s.Credentials.AdminToken)
	stop()

	db, err := bolt.Open(filepath.Join(dir, "keyseal.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit")).Bucket([]byte(tenant))
		return b.Put(binary.BigEndian.AppendUint64(nil, 2), []byte(`{"seq":"two"`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, _ = startServer(t, dir, nil, localserver.Options{})
	r := do(t, s, http.MethodGet, "/admin/audit/verify", admin, "")
	if r.status != http.StatusOK || r.body["valid"] != false || r.body["reason"] != "corrupt" || r.body["first_bad_seq"] != float64(2) {
		t.Fatalf("GET verify with a corrupt entry: %d %s, want 200 valid false, first_bad_seq 2, reason corrupt", r.status, r.raw)
	}
	r = do(t, s, http.MethodGet, "/admin/audit?limit=10", admin, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /admin/audit with a corrupt entry: %d %s", r.status, r.raw)
	}
	entries := r.body["entries"].([]any)
	var corrupt, listed int
	for _, e := range entries {
		m := e.(map[string]any)
		listed++
		if m["corrupt"] == true {
			corrupt++
			if m["seq"] != float64(2) || len(m) != 2 {
				t.Errorf("corrupt entry listed as %v, want {seq: 2, corrupt: true}", m)
			}
		}
	}
	if corrupt != 1 || listed < 4 {
		t.Fatalf("listing %s: want every entry, one marked corrupt", r.raw)
	}
}
