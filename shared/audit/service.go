package audit

import (
	"context"
	"strconv"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// MaxPage bounds one page of a listing.
const MaxPage = 500

// Service reads a tenant's audit chain for the admin API.
type Service struct {
	Log keyseal.AuditLog
}

// Page is one page of entries, newest first, and the cursor of the next
// one (nil on the last page).
type Page struct {
	Entries    []keyseal.AuditEntry `json:"entries"`
	NextCursor *string              `json:"next_cursor"`
}

// List returns the entries q selects. EINVALID for a limit outside
// 1..MaxPage or a cursor below 1 (zero values take 50 and the newest).
func (s *Service) List(ctx context.Context, tenantID string, q keyseal.AuditQuery) (Page, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > MaxPage {
		return Page{}, keyseal.Errorf(keyseal.EINVALID, "limit must be an integer between 1 and %d", MaxPage)
	}
	if q.Before < 0 {
		return Page{}, keyseal.Errorf(keyseal.EINVALID, "cursor must be the next_cursor of a previous page")
	}
	entries, err := s.Log.ListAudit(ctx, tenantID, q)
	if err != nil {
		return Page{}, err
	}
	p := Page{Entries: entries}
	if p.Entries == nil {
		p.Entries = []keyseal.AuditEntry{}
	}
	if n := len(entries); n == q.Limit && entries[n-1].Seq > 1 {
		next := strconv.FormatInt(entries[n-1].Seq, 10)
		p.NextCursor = &next
	}
	return p, nil
}

// Verify recomputes the tenant's chain.
func (s *Service) Verify(ctx context.Context, tenantID string) (Result, error) {
	return VerifyChain(ctx, s.Log, tenantID)
}
