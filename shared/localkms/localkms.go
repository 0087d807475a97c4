// Package localkms is the `local` KMS provider: software keys for dev mode
// and tests, with the five key states of docs/contract.md §10 so every seal trigger can
// be rehearsed without a cloud. It is never wired outside dev mode and tests.
package localkms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyseal/keyseal/shared/internal/lazyre"

	"github.com/keyseal/keyseal/shared/internal/privatefile"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Key states.
const (
	StateEnabled         = "enabled"
	StateDisabled        = "disabled"
	StatePendingDeletion = "pending_deletion"
	StateAccessDenied    = "access_denied"
	StateUnreachable     = "unreachable"
)

// States lists the valid key states.
var States = []string{StateEnabled, StateDisabled, StatePendingDeletion, StateAccessDenied, StateUnreachable}

type key struct {
	Material []byte `json:"material"`
	State    string `json:"state"`
}

// Provider is the local KMS. It is safe for concurrent use.
type Provider struct {
	path string
	mu   sync.RWMutex
	keys map[string]*key
	// keyLatency is per key and in memory only: a rehearsal knob
	// (POST /dev/kms/keys/{id}/latency), not part of a key.
	keyLatency map[string]time.Duration
	latency    atomic.Int64
	wraps      atomic.Int64
	unwraps    atomic.Int64
}

var _ keyseal.Provider = (*Provider)(nil)

// keyVersion is the only version a local key has; Wrap reports it so the
// KeyVersion seam is exercised in dev mode and unit tests.
const keyVersion = "1"

var keyIDPattern = lazyre.New(`^[A-Za-z0-9-]{1,64}$`)

// ParseKey implements keyseal.Provider: a local key is named by key_id.
func (p *Provider) ParseKey(fields map[string]string) (keyseal.KeyRef, error) {
	for name := range fields {
		switch name {
		case "key_id":
		case "key_arn":
			return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "provider local takes key_id, not key_arn")
		default:
			return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "provider local takes only key_id; %s does not apply to it", name)
		}
	}
	if !keyIDPattern.MatchString(fields["key_id"]) {
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "key_id is required for provider local (1-64 letters, digits and -)")
	}
	return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: fields["key_id"]}, nil
}

// Open loads the keys persisted at path, or starts empty; path "" keeps
// keys in memory only.
func Open(path string) (*Provider, error) {
	p := &Provider{path: path, keys: map[string]*key{}, keyLatency: map[string]time.Duration{}}
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("local KMS: %w", err)
	}
	if err := json.Unmarshal(b, &p.keys); err != nil {
		return nil, fmt.Errorf("local KMS: %s is corrupt: %w", path, err)
	}
	if p.keys == nil {
		p.keys = map[string]*key{}
	}
	// A hand-edited file fails here, once, rather than on every call.
	for id, k := range p.keys {
		switch {
		case k == nil || len(k.Material) != 32:
			return nil, fmt.Errorf("local KMS: %s is corrupt: key %s is not a 256-bit key", path, id)
		case !validState(k.State):
			return nil, fmt.Errorf("local KMS: %s is corrupt: key %s has the unknown state %q", path, id, k.State)
		case len(id) > 255:
			return nil, fmt.Errorf("local KMS: %s is corrupt: a key id is over 255 bytes", path)
		}
	}
	return p, nil
}

func validState(state string) bool {
	for _, s := range States {
		if s == state {
			return true
		}
	}
	return false
}

// CreateKey makes a new enabled 256-bit key and returns its id.
func (p *Provider) CreateKey() (string, error) {
	var raw [8]byte
	material := make([]byte, 32)
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("local KMS: %w", err)
	}
	if _, err := rand.Read(material); err != nil {
		return "", fmt.Errorf("local KMS: %w", err)
	}
	id := "local-" + hex.EncodeToString(raw[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[id] = &key{Material: material, State: StateEnabled}
	if err := p.save(); err != nil {
		delete(p.keys, id)
		return "", err
	}
	return id, nil
}

// SetState moves a key to one of States: ENOTFOUND for an unknown key,
// EINVALID for an unknown state.
func (p *Provider) SetState(keyID, state string) error {
	if !validState(state) {
		return keyseal.Errorf(keyseal.EINVALID, "unknown key state %q: want one of %s", state, strings.Join(States, ", "))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[keyID]
	if !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "no local key %q", keyID)
	}
	prev := k.State
	k.State = state
	if err := p.save(); err != nil {
		k.State = prev
		return err
	}
	return nil
}

// State returns a key's state (ENOTFOUND for an unknown key).
func (p *Provider) State(keyID string) (string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	k, ok := p.keys[keyID]
	if !ok {
		return "", keyseal.Errorf(keyseal.ENOTFOUND, "no local key %q", keyID)
	}
	return k.State, nil
}

// SetLatency makes every Wrap and Unwrap wait d first: a fake KMS round
// trip for benchmarks.
func (p *Provider) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// MaxKeyLatency bounds SetKeyLatency: longer than any KMS timeout keyseal
// accepts, so a timeout can be rehearsed too.
const MaxKeyLatency = 2 * time.Minute

// SetKeyLatency makes Wrap and Unwrap with keyID wait d first (on top of
// SetLatency's), so each latency class of the health check can be
// rehearsed: ENOTFOUND for an unknown key, EINVALID for d outside
// [0, MaxKeyLatency]. 0 removes it.
func (p *Provider) SetKeyLatency(keyID string, d time.Duration) error {
	if d < 0 || d > MaxKeyLatency {
		return keyseal.Errorf(keyseal.EINVALID, "latency must be between 0 and %d ms", MaxKeyLatency.Milliseconds())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.keys[keyID]; !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "no local key %q", keyID)
	}
	if d == 0 {
		delete(p.keyLatency, keyID)
	} else {
		p.keyLatency[keyID] = d
	}
	return nil
}

var _ keyseal.KeyStater = (*Provider)(nil)

// KeyState implements keyseal.KeyStater with AWS's state names. The two
// states that stand for a failing call rather than a key state
// (access_denied, unreachable) fail as DescribeKey would.
func (p *Provider) KeyState(_ context.Context, ref keyseal.KeyRef) (string, error) {
	state, err := p.State(ref.KeyID)
	if err != nil {
		return keyseal.KeyStateUnknown, kmsErr(true, keyseal.ReasonKeyNotFound, "NotFoundException", "local key %q does not exist", ref.KeyID)
	}
	switch state {
	case StateDisabled:
		return keyseal.KeyStateDisabled, nil
	case StatePendingDeletion:
		return keyseal.KeyStatePendingDeletion, nil
	case StateAccessDenied:
		return keyseal.KeyStateUnknown, kmsErr(true, keyseal.ReasonAccessDenied, "AccessDeniedException", "access to local key %s is denied", ref.KeyID)
	case StateUnreachable:
		return keyseal.KeyStateUnknown, kmsErr(false, keyseal.ReasonUnreachable, "Unreachable", "local key %s is unreachable", ref.KeyID)
	}
	return keyseal.KeyStateEnabled, nil
}

// Calls reports how many Wrap and Unwrap calls were made.
func (p *Provider) Calls() (wraps, unwraps int64) { return p.wraps.Load(), p.unwraps.Load() }

// save writes the keys atomically (caller holds mu). The file holds key
// material, so it is private to the user.
func (p *Provider) save() error {
	if p.path == "" {
		return nil
	}
	b, err := json.Marshal(p.keys)
	if err != nil {
		return fmt.Errorf("local KMS: %w", err)
	}
	// A crash leaves the old file or the new one, never half of one.
	if err := privatefile.Write(p.path, b); err != nil {
		return fmt.Errorf("local KMS: %w", err)
	}
	return nil
}

func kmsErr(terminal bool, reason, code, format string, args ...any) *keyseal.KMSError {
	return &keyseal.KMSError{Terminal: terminal, Reason: reason, Code: code, Err: fmt.Errorf(format, args...)}
}

// usable waits out the configured latency and returns the key's AEAD, or the
// failure its state stands for, with AWS KMS's error codes.
func (p *Provider) usable(ctx context.Context, keyID string) (cipher.AEAD, error) {
	p.mu.RLock()
	extra := p.keyLatency[keyID]
	p.mu.RUnlock()
	if d := time.Duration(p.latency.Load()) + extra; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, kmsErr(false, keyseal.ReasonUnreachable, "RequestTimeout", "local KMS: %w", ctx.Err())
		}
	}
	p.mu.RLock()
	k, ok := p.keys[keyID]
	var material []byte
	var state string
	if ok {
		material, state = k.Material, k.State
	}
	p.mu.RUnlock()
	if !ok {
		return nil, kmsErr(true, keyseal.ReasonKeyNotFound, "NotFoundException", "local key %q does not exist", keyID)
	}
	switch state {
	case StateDisabled:
		return nil, kmsErr(true, keyseal.ReasonKeyDisabled, "DisabledException", "local key %s is disabled", keyID)
	case StatePendingDeletion:
		return nil, kmsErr(true, keyseal.ReasonPendingDeletion, "KMSInvalidStateException", "local key %s is pending deletion", keyID)
	case StateAccessDenied:
		return nil, kmsErr(true, keyseal.ReasonAccessDenied, "AccessDeniedException", "access to local key %s is denied", keyID)
	case StateUnreachable:
		// At once rather than after a pretend timeout: the caller sees the
		// transient failure a timeout gives, and tests of that path stay
		// fast.
		return nil, kmsErr(false, keyseal.ReasonUnreachable, "Unreachable", "local key %s is unreachable", keyID)
	}
	block, err := aes.NewCipher(material)
	if err != nil {
		return nil, kmsErr(false, keyseal.ReasonUnreachable, "KMSInternalException", "local key %s: %w", keyID, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, kmsErr(false, keyseal.ReasonUnreachable, "KMSInternalException", "local key %s: %w", keyID, err)
	}
	return aead, nil
}

// aad binds a blob to its key and encryption context: the context's pairs
// sorted by key, each length-prefixed, so no two contexts encode alike.
func aad(keyID string, ec map[string]string) []byte {
	names := make([]string, 0, len(ec))
	for k := range ec {
		names = append(names, k)
	}
	sort.Strings(names)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(keyID)))
	out = append(out, keyID...)
	for _, k := range names {
		out = binary.BigEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(ec[k])))
		out = append(out, ec[k]...)
	}
	return out
}

// Wrap implements keyseal.KMS. The blob is: key id length (1 byte), key id,
// nonce, AES-256-GCM ciphertext.
func (p *Provider) Wrap(ctx context.Context, ref keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	p.wraps.Add(1)
	aead, err := p.usable(ctx, ref.KeyID)
	if err != nil {
		return keyseal.Wrapped{}, err
	}
	if len(ref.KeyID) > 255 {
		return keyseal.Wrapped{}, kmsErr(true, keyseal.ReasonKeyNotFound, "ValidationException", "key id too long")
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return keyseal.Wrapped{}, kmsErr(false, keyseal.ReasonUnreachable, "KMSInternalException", "local KMS: %w", err)
	}
	blob := append([]byte{byte(len(ref.KeyID))}, ref.KeyID...)
	blob = append(blob, nonce...)
	return keyseal.Wrapped{Blob: aead.Seal(blob, nonce, plaintext, aad(ref.KeyID, ec)), KeyVersion: keyVersion}, nil
}

// Unwrap implements keyseal.KMS, pinned to ref: a blob made under another
// key, or with another encryption context, is refused as terminal.
func (p *Provider) Unwrap(ctx context.Context, ref keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	p.unwraps.Add(1)
	aead, err := p.usable(ctx, ref.KeyID)
	if err != nil {
		return nil, err
	}
	if w.KeyVersion != "" && w.KeyVersion != keyVersion {
		return nil, kmsErr(true, keyseal.ReasonInvalidBlob, "IncorrectKeyException", "local keys have no version %q", w.KeyVersion)
	}
	blob := w.Blob
	if len(blob) < 1 || len(blob) < 1+int(blob[0])+aead.NonceSize() {
		return nil, kmsErr(true, keyseal.ReasonInvalidBlob, "InvalidCiphertextException", "ciphertext is malformed")
	}
	keyID := string(blob[1 : 1+int(blob[0])])
	if keyID != ref.KeyID {
		return nil, kmsErr(true, keyseal.ReasonInvalidBlob, "IncorrectKeyException", "ciphertext was made under another key")
	}
	rest := blob[1+len(keyID):]
	nonce, sealed := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plaintext, err := aead.Open(nil, nonce, sealed, aad(keyID, ec))
	if err != nil {
		return nil, kmsErr(true, keyseal.ReasonInvalidBlob, "InvalidCiphertextException", "ciphertext or encryption context does not match")
	}
	return plaintext, nil
}
