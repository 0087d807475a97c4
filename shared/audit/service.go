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
	// Anchor verifies checkpoints; nil where no signing key is configured
	// (unit tests), and then the checkpoint routes answer EINTERNAL.
	Anchor *Anchor
}

// Page is one page of entries, newest first, and the cursor of the next
// one (nil on the last page).
type Page struct {
	Entries    []keyseal.AuditEntry `json:"entries"`
	NextCursor *string              `json:"next_cursor"`
}

// List returns the entries q selects. EINVALID for a limit outside
// 1..MaxPage or a cursor below 1 (zero values take 50 and the newest). An
// entry the store cannot decode is listed as corrupt, not an error.
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

// Verify recomputes the tenant's chain and checks the stored head's
// signed checkpoint (GET /admin/audit/verify). Alone it proves the chain
// is internally consistent and its head was signed by keyseal; it cannot
// tell a rolled-back chain whose old signed head was restored with it:
// that takes a checkpoint saved earlier (VerifyCheckpoint).
func (s *Service) Verify(ctx context.Context, tenantID string) (Result, error) {
	res, head, err := verifyChain(ctx, s.Log, tenantID, &Verifier{})
	if err != nil || !res.Valid || s.Anchor == nil || head.Seq == 0 {
		return res, err
	}
	reason, err := s.checkHead(ctx, tenantID, head)
	if err != nil || reason == "" {
		return res, err
	}
	res.Valid, res.Reason = false, reason
	return res, nil
}

// checkHead returns why the head's checkpoint does not vouch for the head
// ("" when it does).
func (s *Service) checkHead(ctx context.Context, tenantID string, head keyseal.AuditHead) (string, error) {
	if head.Checkpoint == "" {
		return ReasonUnsigned, nil
	}
	c, reason, err := s.Anchor.open(ctx, tenantID, head.Checkpoint)
	if keyseal.ErrorCode(err) == keyseal.EINVALID {
		return ReasonBadSignature, nil // the stored text is not even a checkpoint
	}
	if err != nil || reason != "" {
		return reason, err
	}
	if c.Size != head.Seq || c.Root != head.Hash {
		return ReasonBadSignature, nil // a genuine checkpoint, of another head
	}
	return "", nil
}

// VerifyCheckpoint proves the tenant's chain extends checkpoint, a signed
// checkpoint saved earlier (POST /admin/audit/verify): it is keyseal's,
// of this tenant, the chain replays, reaches its size and has its root
// hash at that size, and the current head is signed too. Otherwise the
// result says why: bad_signature, unknown_origin, truncated (shorter than
// the checkpoint: a rollback or a wipe), rewritten (different history up
// to its size), or corrupt / broken / unsigned as GET verify. EINVALID for
// text that is not a signed checkpoint.
func (s *Service) VerifyCheckpoint(ctx context.Context, tenantID, checkpoint string) (Result, error) {
	if s.Anchor == nil {
		return Result{}, keyseal.Errorf(keyseal.EINTERNAL, "no audit signing key configured")
	}
	c, reason, err := s.Anchor.open(ctx, tenantID, checkpoint)
	if err != nil {
		return Result{}, err
	}
	if reason != "" {
		return Result{Valid: false, Reason: reason}, nil
	}
	v := &Verifier{}
	v.Watch(c.Size)
	res, head, err := verifyChain(ctx, s.Log, tenantID, v)
	if err != nil {
		return Result{}, err
	}
	res.CheckpointSize = c.Size
	fail := func(reason string, bad *int64) (Result, error) {
		res.Valid, res.Reason, res.FirstBadSeq = false, reason, bad
		return res, nil
	}
	if res.Valid || *res.FirstBadSeq > c.Size {
		// The chain replays at least up to the checkpoint's size.
		if last := min(head.Seq, v.prev.Seq); last < c.Size {
			next := last + 1
			return fail(ReasonTruncated, &next)
		}
		if v.Watched() != c.Root {
			return fail(ReasonRewritten, nil)
		}
		if !res.Valid {
			return res, nil // extends the checkpoint, broken after it
		}
		if reason, err := s.checkHead(ctx, tenantID, head); err != nil || reason != "" {
			if err != nil {
				return Result{}, err
			}
			return fail(reason, nil)
		}
		return res, nil
	}
	// The chain breaks at or before the checkpoint's size.
	switch {
	case res.Reason == ReasonCorrupt:
		return res, nil
	case v.prev.Seq < c.Size:
		return fail(ReasonTruncated, res.FirstBadSeq)
	default:
		return fail(ReasonRewritten, res.FirstBadSeq)
	}
}

// Signed is the latest signed checkpoint of a tenant's chain.
type Signed struct {
	Checkpoint string `json:"checkpoint"`
	Origin     string `json:"origin"`
	Size       int64  `json:"size"`
	RootHash   string `json:"root_hash"`
}

// Checkpoint returns the stored head's signed checkpoint. ENOTFOUND when
// the head has none that verifies (an empty chain, a head written before
// checkpoints were signed, or one GET verify reports).
func (s *Service) Checkpoint(ctx context.Context, tenantID string) (Signed, error) {
	if s.Anchor == nil {
		return Signed{}, keyseal.Errorf(keyseal.EINTERNAL, "no audit signing key configured")
	}
	head, err := s.Log.ReadAuditHead(ctx, tenantID)
	if err != nil {
		return Signed{}, err
	}
	if head.Seq == 0 {
		return Signed{}, keyseal.Errorf(keyseal.ENOTFOUND, "the audit chain is empty")
	}
	reason, err := s.checkHead(ctx, tenantID, head)
	if err != nil {
		return Signed{}, err
	}
	if reason != "" {
		return Signed{}, keyseal.Errorf(keyseal.ENOTFOUND, "the chain head has no valid signed checkpoint (%s); GET /admin/audit/verify says more, and the next audited action signs a new one", reason)
	}
	return Signed{Checkpoint: head.Checkpoint, Origin: s.Anchor.Origin(tenantID), Size: head.Seq, RootHash: head.Hash}, nil
}

// KeyInfo describes the checkpoint signing key.
type KeyInfo struct {
	// VerifierKey is the note verifier key (name+hash+base64 key), what
	// golang.org/x/mod/sumdb/note.NewVerifier and other C2SP signed-note
	// tools take.
	VerifierKey string `json:"verifier_key"`
	Name        string `json:"key_name"`
	Origin      string `json:"origin"`
	Algorithm   string `json:"algorithm"`
}

// CheckpointKey returns the verifier key and the tenant's origin line.
func (s *Service) CheckpointKey(ctx context.Context, tenantID string) (KeyInfo, error) {
	if s.Anchor == nil {
		return KeyInfo{}, keyseal.Errorf(keyseal.EINTERNAL, "no audit signing key configured")
	}
	v, vkey, err := s.Anchor.Verifier(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{VerifierKey: vkey, Name: v.Name(), Origin: s.Anchor.Origin(tenantID), Algorithm: "Ed25519"}, nil
}
