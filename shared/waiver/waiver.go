// Package waiver is the BYOK legal waiver: the versioned text a tenant's
// admin acknowledges before registering or migrating a customer key, and
// the record of who acknowledged which version and when.
//
// The text is compiled into the binary (waiver.txt) and may be replaced by
// a file (KEYSEAL_WAIVER_FILE); its first line is "version: ...". A newer
// version never disturbs a running tenant: it only blocks register and
// migrate (Require) until the tenant acknowledges it.
package waiver

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

//go:embed waiver.txt
var embedded []byte

// Waiver is one version of the waiver text.
type Waiver struct {
	Version string `json:"version"`
	Text    string `json:"text"`
	SHA256  string `json:"sha256"`
}

// MaxSize bounds a waiver text (a file or a dev publish).
const MaxSize = 32 << 10

// Embedded returns the waiver compiled into the binary.
func Embedded() Waiver {
	w, err := Parse(embedded)
	if err != nil {
		panic("waiver: embedded waiver.txt: " + err.Error()) // caught by the package's tests
	}
	return w
}

// Parse reads a waiver file: a first line "version: V", then the text.
// The text returned is the whole file; SHA256 is over those bytes.
func Parse(data []byte) (Waiver, error) {
	first, _, _ := strings.Cut(string(data), "\n")
	v, ok := strings.CutPrefix(strings.TrimSpace(first), "version:")
	if !ok {
		return Waiver{}, errors.New(`first line must be "version: VERSION"`)
	}
	w, err := New(strings.TrimSpace(v), string(data))
	if err != nil {
		return Waiver{}, err
	}
	return w, nil
}

// New builds a waiver from a version and its text, checking both.
func New(version, text string) (Waiver, error) {
	if !keyseal.ValidName(version, 64, "._-") {
		return Waiver{}, errors.New("version: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if strings.TrimSpace(text) == "" || len(text) > MaxSize {
		return Waiver{}, fmt.Errorf("text must be non-empty and at most %d bytes", MaxSize)
	}
	sum := sha256.Sum256([]byte(text))
	return Waiver{Version: version, Text: text, SHA256: hex.EncodeToString(sum[:])}, nil
}

// Status is a tenant's standing against the current waiver.
type Status struct {
	// Acknowledged: the current version is acknowledged.
	Acknowledged bool `json:"acknowledged"`
	// Version is the current waiver version.
	Version             string     `json:"version"`
	AcknowledgedVersion *string    `json:"acknowledged_version"`
	AcknowledgedBy      *string    `json:"acknowledged_by"`
	AcknowledgedAt      *time.Time `json:"acknowledged_at"`
	// RequiresReacknowledgment: an older version is acknowledged, not the
	// current one.
	RequiresReacknowledgment bool `json:"requires_reacknowledgment"`
}

// Service serves the current waiver and records acknowledgments. It is
// safe for concurrent use.
type Service struct {
	store   keyseal.WaiverStore
	current atomic.Pointer[Waiver]
	now     func() time.Time
}

// NewService serves w as the current waiver.
func NewService(store keyseal.WaiverStore, w Waiver, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{store: store, now: now}
	s.current.Store(&w)
	return s
}

// Current returns the waiver tenants must acknowledge.
func (s *Service) Current() Waiver { return *s.current.Load() }

// Publish makes w the current waiver (dev mode: rehearsing a new version).
// Tenants keep running; their next register or migrate needs a new
// acknowledgment.
func (s *Service) Publish(w Waiver) { s.current.Store(&w) }

// Acknowledge records that by (an email) acknowledged the current version
// for the tenant, with a byok.waiver.acknowledge audit entry naming the
// admin (actor). EINVALID for a bad email.
func (s *Service) Acknowledge(ctx context.Context, tenantID, by, actor string) (Status, error) {
	if err := ValidEmail(by); err != nil {
		return Status{}, err
	}
	w := s.Current()
	ack := keyseal.WaiverAck{TenantID: tenantID, Version: w.Version, SHA256: w.SHA256, AcknowledgedBy: by, Actor: actor,
		AcknowledgedAt: s.now().UTC()}
	rec := keyseal.AuditRecord{At: ack.AcknowledgedAt, Action: keyseal.ActionWaiverAck, Severity: keyseal.SeverityInfo, Actor: actor,
		Details: map[string]string{"version": w.Version, "sha256": w.SHA256, "acknowledged_by": by}}
	if err := s.store.PutWaiverAck(ctx, ack, rec); err != nil {
		return Status{}, err
	}
	return statusOf(w, &ack), nil
}

// Status returns the tenant's standing against the current waiver.
func (s *Service) Status(ctx context.Context, tenantID string) (Status, error) {
	w := s.Current()
	ack, err := s.store.GetWaiverAck(ctx, tenantID)
	if keyseal.ErrorCode(err) == keyseal.ENOTFOUND {
		return statusOf(w, nil), nil
	}
	if err != nil {
		return Status{}, err
	}
	return statusOf(w, ack), nil
}

// Require is the gate of register and migrate: nil when the tenant
// acknowledged the current version; EWAIVER or EWAIVERREACK (both with
// waiver_version) otherwise.
func (s *Service) Require(ctx context.Context, tenantID string) error {
	st, err := s.Status(ctx, tenantID)
	switch {
	case err != nil:
		return err
	case st.Acknowledged:
		return nil
	case st.RequiresReacknowledgment:
		return keyseal.Errorf(keyseal.EWAIVERREACK, "the legal waiver changed (version %s; you acknowledged %s): read GET /admin/tenant-kms/legal-waiver and acknowledge it again with POST",
			st.Version, *st.AcknowledgedVersion).With("waiver_version", st.Version)
	default:
		return keyseal.Errorf(keyseal.EWAIVER, "acknowledge the BYOK legal waiver (version %s) first: read GET /admin/tenant-kms/legal-waiver, then POST {\"acknowledged\": true, \"acknowledged_by\": \"<email>\"} to it",
			st.Version).With("waiver_version", st.Version)
	}
}

func statusOf(w Waiver, ack *keyseal.WaiverAck) Status {
	st := Status{Version: w.Version}
	if ack == nil {
		return st
	}
	// Same version with other text (a file edited without a new version)
	// is not the waiver that was acknowledged.
	st.Acknowledged = ack.Version == w.Version && (ack.SHA256 == "" || ack.SHA256 == w.SHA256)
	st.RequiresReacknowledgment = !st.Acknowledged
	v, by, at := ack.Version, ack.AcknowledgedBy, ack.AcknowledgedAt
	st.AcknowledgedVersion, st.AcknowledgedBy, st.AcknowledgedAt = &v, &by, &at
	return st
}

// ValidEmail checks an acknowledger's address: one plain addr-spec (no
// display name), at most 254 bytes, a dot in the domain.
func ValidEmail(s string) error {
	bad := keyseal.Errorf(keyseal.EINVALID, "acknowledged_by must be an email address (name@example.com)")
	if len(s) > 254 || strings.TrimSpace(s) != s {
		return bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return bad
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return bad
	}
	return nil
}
