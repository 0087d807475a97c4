package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Key is a checkpoint signing key: Ed25519, its private half kept out of
// the table (a KMS key on AWS, a key file under the data dir locally), so
// whoever can write the table cannot sign. Implementations: shared/auditkey.
type Key interface {
	// PublicKey returns the key's public half.
	PublicKey(ctx context.Context) (ed25519.PublicKey, error)
	// Sign returns the pure Ed25519 signature of msg.
	Sign(ctx context.Context, msg []byte) ([]byte, error)
}

// PublishInterval is how old the last published checkpoint of a tenant
// may be before an append publishes a new one.
const PublishInterval = 5 * time.Minute

// Anchor signs each new chain head as a checkpoint (stores call NextHead
// inside the append's transaction), verifies checkpoints, and publishes an
// audit.checkpoint event with an append when the tenant's last published
// checkpoint is PublishInterval old, so checkpoints leave keyseal at least
// that often while the chain grows. A nil *Anchor signs nothing (unit
// tests' stores).
//
// Names: the note key name is "keyseal/<stage>" and a tenant's origin line
// "keyseal/<stage>/<tenant id>", both stable for the life of a deployment.
// Tenant ids hold no "/" or spaces (storecheck), so an origin names exactly
// one tenant of one stage.
type Anchor struct {
	key  Key
	name string
	log  *slog.Logger

	mu       sync.Mutex
	verifier note.Verifier
	vkey     string
}

// NewAnchor returns an anchor for stage's checkpoints signed by key.
func NewAnchor(key Key, stage string, log *slog.Logger) (*Anchor, error) {
	name := "keyseal/" + stage
	if stage == "" || strings.ContainsAny(stage, "+ \t\n/") {
		return nil, fmt.Errorf("audit anchor: stage %q cannot name a note key (no spaces, '+' or '/')", stage)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Anchor{key: key, name: name, log: log}, nil
}

// Origin is the checkpoint origin line of a tenant's chain.
func (a *Anchor) Origin(tenantID string) string { return a.name + "/" + tenantID }

// Verifier returns the note verifier of the signing key and its verifier
// key string (name+hash+key, what GET /admin/audit/checkpoint-key serves).
// The public key is fetched once per process.
func (a *Anchor) Verifier(ctx context.Context) (note.Verifier, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verifier != nil {
		return a.verifier, a.vkey, nil
	}
	pub, err := a.key.PublicKey(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("audit signing key: %w", err)
	}
	vkey, err := note.NewEd25519VerifierKey(a.name, pub)
	if err != nil {
		return nil, "", fmt.Errorf("audit signing key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", fmt.Errorf("audit signing key: %w", err)
	}
	a.verifier, a.vkey = v, vkey
	return v, vkey, nil
}

// Sign returns the signed note of c.
func (a *Anchor) Sign(ctx context.Context, c Checkpoint) (string, error) {
	body, err := c.Body()
	if err != nil {
		return "", err
	}
	v, _, err := a.Verifier(ctx)
	if err != nil {
		return "", err
	}
	msg, err := note.Sign(&note.Note{Text: body}, ctxSigner{ctx: ctx, key: a.key, v: v})
	if err != nil {
		return "", fmt.Errorf("sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// ctxSigner is a note.Signer over a Key for one call's context.
type ctxSigner struct {
	ctx context.Context
	key Key
	v   note.Verifier
}

func (s ctxSigner) Name() string                    { return s.v.Name() }
func (s ctxSigner) KeyHash() uint32                 { return s.v.KeyHash() }
func (s ctxSigner) Sign(msg []byte) ([]byte, error) { return s.key.Sign(s.ctx, msg) }

// NextHead returns the head a store writes with entry e, in the same
// transaction: e's seq and hash and its signed checkpoint, and, when this
// append is the one to publish the checkpoint (the tenant's first, or the
// first PublishInterval after the last published), its audit.checkpoint
// event, which the store writes to the outbox in that same transaction, so
// it leaves keyseal exactly when the head it announces committed. A
// signing failure is logged and leaves the head unsigned rather than
// failing the append: a seal must never wait on the audit key. GET
// /admin/audit/verify reports such a head as "unsigned" until the next
// append signs again.
func (a *Anchor) NextHead(ctx context.Context, prev keyseal.AuditHead, e keyseal.AuditEntry) (keyseal.AuditHead, *keyseal.Event) {
	head := keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash, PublishedAt: prev.PublishedAt}
	if a == nil {
		return head, nil
	}
	cp, err := a.Sign(ctx, Checkpoint{Origin: a.Origin(e.TenantID), Size: e.Seq, Root: e.Hash})
	if err != nil {
		a.log.Error("audit checkpoint not signed", "tenant_id", e.TenantID, "seq", e.Seq, "error", err.Error())
		return head, nil
	}
	head.Checkpoint = cp
	if !prev.PublishedAt.IsZero() && e.TS.Sub(prev.PublishedAt) < PublishInterval {
		return head, nil
	}
	ev, err := keyseal.NewEvent(keyseal.EventCheckpoint, e.TenantID, e.TS,
		keyseal.CheckpointData{Checkpoint: cp, Size: e.Seq, RootHash: e.Hash})
	if err != nil {
		a.log.Error("audit checkpoint not published", "tenant_id", e.TenantID, "seq", e.Seq, "error", err.Error())
		return head, nil
	}
	head.PublishedAt = e.TS
	return head, &ev
}

// errNotNote is a checkpoint that is not a signed note at all.
var errNotNote = keyseal.Errorf(keyseal.EINVALID, "checkpoint is not a signed note (C2SP signed-note: body, a blank line, signature lines)")

// open checks a checkpoint's signature and origin and parses it. It
// returns the reason it is refused ("bad_signature", "unknown_origin"),
// or an EINVALID error for text that is not a signed checkpoint at all.
func (a *Anchor) open(ctx context.Context, tenantID, text string) (Checkpoint, string, error) {
	v, _, err := a.Verifier(ctx)
	if err != nil {
		return Checkpoint{}, "", err
	}
	n, err := note.Open([]byte(text), note.VerifierList(v))
	if err != nil {
		if _, ok := errors.AsType[*note.UnverifiedNoteError](err); ok {
			return Checkpoint{}, ReasonBadSignature, nil // signed, but not by keyseal's key
		}
		if _, ok := errors.AsType[*note.InvalidSignatureError](err); ok {
			return Checkpoint{}, ReasonBadSignature, nil
		}
		return Checkpoint{}, "", errNotNote
	}
	c, err := parseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, "", keyseal.Errorf(keyseal.EINVALID, "checkpoint: %v", err)
	}
	if c.Origin != a.Origin(tenantID) {
		return c, ReasonUnknownOrigin, nil
	}
	return c, "", nil
}
