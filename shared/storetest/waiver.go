package storetest

import (
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func waiverTests() []test {
	return []test{
		{"Waiver/AckAndGet", testWaiverAck},
		{"Waiver/NewerReplaces", testWaiverReplace},
		{"Waiver/Invalid", testWaiverInvalid},
	}
}

func newWaiverAck(tenantID, version string, when time.Time) keyseal.WaiverAck {
	return keyseal.WaiverAck{TenantID: tenantID, Version: version, SHA256: keyHash(version),
		AcknowledgedBy: "legal@" + tenantID + ".example", Actor: "admin:alice", AcknowledgedAt: when}
}

func getWaiverAck(t *testing.T, s keyseal.Store, tenantID string) *keyseal.WaiverAck {
	t.Helper()
	ack, err := s.GetWaiverAck(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("GetWaiverAck(%q): %v", tenantID, err)
	}
	return ack
}

// An acknowledgment is read back as written, with its audit entry in the
// chain; another tenant has none, and none needs a tenant row first (a
// customer reads and accepts the waiver before it registers).
func testWaiverAck(t *testing.T, s keyseal.Store) {
	_, err := s.GetWaiverAck(t.Context(), "tenant-a")
	requireCode(t, err, keyseal.ENOTFOUND, "GetWaiverAck(never acknowledged)")
	rec := newRecord(keyseal.ActionWaiverAck, "v1")
	if err := s.PutWaiverAck(t.Context(), newWaiverAck("tenant-a", "2026-01", at(time.Minute)), rec); err != nil {
		t.Fatalf("PutWaiverAck: %v", err)
	}
	requireEqual(t, "GetWaiverAck", getWaiverAck(t, s, "tenant-a"), new(newWaiverAck("tenant-a", "2026-01", at(time.Minute))))
	entries := requireChainLen(t, s, "tenant-a", 1)
	requireEntry(t, entries[0], "tenant-a", 1, "", rec)
	_, err = s.GetWaiverAck(t.Context(), "tenant-b")
	requireCode(t, err, keyseal.ENOTFOUND, "GetWaiverAck(other tenant)")
	requireChainLen(t, s, "tenant-b", 0)
}

// A later acknowledgment (a new waiver version) replaces the earlier one;
// the chain keeps both.
func testWaiverReplace(t *testing.T, s keyseal.Store) {
	for i, v := range []string{"2026-01", "2026-06"} {
		if err := s.PutWaiverAck(t.Context(), newWaiverAck("tenant-a", v, at(time.Duration(i)*time.Hour)), newRecord(keyseal.ActionWaiverAck, v)); err != nil {
			t.Fatalf("PutWaiverAck(%s): %v", v, err)
		}
	}
	requireEqual(t, "GetWaiverAck after a newer version", getWaiverAck(t, s, "tenant-a"), new(newWaiverAck("tenant-a", "2026-06", at(time.Hour))))
	requireValidChain(t, s, "tenant-a", 2)
}

// An acknowledgment missing its tenant, version, acknowledger or time, or
// with an audit record without time, is refused and writes nothing.
func testWaiverInvalid(t *testing.T, s keyseal.Store) {
	good := newWaiverAck("tenant-a", "2026-01", at(0))
	for name, edit := range map[string]func(*keyseal.WaiverAck){
		"no tenant":  func(a *keyseal.WaiverAck) { a.TenantID = "" },
		"no version": func(a *keyseal.WaiverAck) { a.Version = "" },
		"no email":   func(a *keyseal.WaiverAck) { a.AcknowledgedBy = "" },
		"no time":    func(a *keyseal.WaiverAck) { a.AcknowledgedAt = time.Time{} },
	} {
		ack := good
		edit(&ack)
		err := s.PutWaiverAck(t.Context(), ack, newRecord(keyseal.ActionWaiverAck, name))
		requireCode(t, err, keyseal.EINVALID, "PutWaiverAck("+name+")")
	}
	rec := newRecord(keyseal.ActionWaiverAck, "no time")
	rec.At = time.Time{}
	requireCode(t, s.PutWaiverAck(t.Context(), good, rec), keyseal.EINVALID, "PutWaiverAck(record without time)")
	_, err := s.GetWaiverAck(t.Context(), "tenant-a")
	requireCode(t, err, keyseal.ENOTFOUND, "GetWaiverAck after refused writes")
	requireChainLen(t, s, "tenant-a", 0)
}
