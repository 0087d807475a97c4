package keyseal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func TestErrorCodeAndMessage(t *testing.T) {
	e := keyseal.Errorf(keyseal.ENOTSEALED, "tenant %s is not sealed", "acme")
	wrapped := fmt.Errorf("unseal: %w", e)
	tests := []struct {
		name      string
		err       error
		code, msg string
	}{
		{"nil", nil, "", "internal error"},
		{"application error", e, keyseal.ENOTSEALED, "tenant acme is not sealed"},
		{"wrapped application error", wrapped, keyseal.ENOTSEALED, "tenant acme is not sealed"},
		{"plain error", errors.New("dynamodb: secret table detail"), keyseal.EINTERNAL, "internal error"},
		{"internal application error", keyseal.Errorf(keyseal.EINTERNAL, "secret detail"), keyseal.EINTERNAL, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyseal.ErrorCode(tc.err); got != tc.code {
				t.Fatalf("ErrorCode = %q, want %q", got, tc.code)
			}
			if got := keyseal.ErrorMessage(tc.err); got != tc.msg {
				t.Fatalf("ErrorMessage = %q, want %q", got, tc.msg)
			}
		})
	}
}

func TestErrorWithCopies(t *testing.T) {
	base := keyseal.Errorf(keyseal.EUNSEALFAILED, "still failing")
	a := base.With("reason", "access_denied")
	b := a.With("extra", 1)
	if base.Extra != nil || len(a.Extra) != 1 || len(b.Extra) != 2 || a.Extra["reason"] != "access_denied" {
		t.Fatalf("With changed its receiver: base %v, a %v, b %v", base.Extra, a.Extra, b.Extra)
	}
}

func TestTransportCode(t *testing.T) {
	tests := []struct {
		err  error
		code string
		ok   bool
	}{
		{context.DeadlineExceeded, "Timeout", true},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), "Timeout", true},
		{context.Canceled, "Canceled", true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "NetworkError", true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "NetworkError", true},
		{io.ErrUnexpectedEOF, "NetworkError", true},
		{io.EOF, "NetworkError", true},
		{errors.New("AccessDeniedException"), "Unclassified", false},
	}
	for _, tc := range tests {
		code, ok := keyseal.TransportCode(tc.err)
		if code != tc.code || ok != tc.ok {
			t.Errorf("TransportCode(%v) = %q, %v; want %q, %v", tc.err, code, ok, tc.code, tc.ok)
		}
	}
}

func TestClassifyKMS(t *testing.T) {
	terminal := &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonKeyDisabled, Code: "DisabledException"}
	if got := keyseal.ClassifyKMS(fmt.Errorf("wrap: %w", terminal)); got != terminal {
		t.Fatalf("a classified error was reclassified: %v", got)
	}
	got := keyseal.ClassifyKMS(context.DeadlineExceeded)
	if got.Terminal || got.Reason != keyseal.ReasonUnreachable || got.Code != "Timeout" {
		t.Fatalf("unclassified timeout = %+v, want transient unreachable Timeout", got)
	}
	if terminal.UnsealReason() != keyseal.ReasonAccessDenied || got.UnsealReason() != keyseal.ReasonUnreachable {
		t.Fatal("UnsealReason does not map terminal to access_denied and transient to unreachable")
	}
}

// stubProvider is a Provider whose ParseKey accepts {"key_id"}.
type stubProvider struct{ name string }

func (s stubProvider) Wrap(context.Context, keyseal.KeyRef, []byte, map[string]string) (keyseal.Wrapped, error) {
	return keyseal.Wrapped{Blob: []byte("b"), KeyVersion: "7"}, nil
}

func (s stubProvider) Unwrap(_ context.Context, _ keyseal.KeyRef, w keyseal.Wrapped, _ map[string]string) ([]byte, error) {
	return []byte(w.KeyVersion), nil
}

func (s stubProvider) ParseKey(f map[string]string) (keyseal.KeyRef, error) {
	return keyseal.KeyRef{Provider: s.name, KeyID: f["key_id"]}, nil
}

func TestProvidersParseKey(t *testing.T) {
	p := keyseal.Providers{keyseal.ProviderLocal: stubProvider{keyseal.ProviderLocal}}
	if k, err := p.ParseKey(keyseal.ProviderLocal, map[string]string{"key_id": "k1"}); err != nil || k.KeyID != "k1" {
		t.Fatalf("configured provider: %+v, %v", k, err)
	}
	tests := []struct {
		provider, code string
	}{
		{"", keyseal.EINVALID},
		{"vault", keyseal.EINVALID},
		{keyseal.ProviderAWS, keyseal.EPROVIDER},
		{keyseal.ProviderGCP, keyseal.EPROVIDER},
		{keyseal.ProviderAzure, keyseal.EPROVIDER},
	}
	for _, tc := range tests {
		_, err := p.ParseKey(tc.provider, nil)
		if keyseal.ErrorCode(err) != tc.code || !strings.Contains(keyseal.ErrorMessage(err), "supports: local") {
			t.Errorf("ParseKey(%q) = %v, want %s listing what this server supports", tc.provider, err, tc.code)
		}
	}
}

// TestUnconfiguredProviderNeverSeals: a tenant whose key names a provider
// this process lacks gets an error that is not a KMSError, so the seal
// state machine treats it as a fault of keyseal's, never the customer's
// kill switch.
func TestUnconfiguredProviderNeverSeals(t *testing.T) {
	p := keyseal.Providers{keyseal.ProviderLocal: stubProvider{keyseal.ProviderLocal}}
	key := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: "k"}
	_, werr := p.Wrap(context.Background(), key, nil, nil)
	_, uerr := p.Unwrap(context.Background(), key, keyseal.Wrapped{}, nil)
	for _, err := range []error{werr, uerr} {
		if _, ok := errors.AsType[*keyseal.KMSError](err); ok || err == nil {
			t.Fatalf("unconfigured provider gave %v, want a plain error", err)
		}
	}
	if err := p.Require(keyseal.ProviderAWS); err == nil || !strings.Contains(err.Error(), "local") {
		t.Fatalf("Require(aws-kms) = %v, want an error listing the configured providers", err)
	}
	// Dispatch passes the key version through both ways.
	w, err := p.Wrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderLocal}, nil, nil)
	if err != nil || w.KeyVersion != "7" {
		t.Fatalf("Wrap = %+v, %v", w, err)
	}
	if got, err := p.Unwrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderLocal}, w, nil); err != nil || string(got) != "7" {
		t.Fatalf("Unwrap did not get the key version back: %q %v", got, err)
	}
}

func TestKeyRefEqual(t *testing.T) {
	a := keyseal.KeyRef{Provider: "aws-kms", KeyID: "k", Access: map[string]string{"role_arn": "r", "external_id": "x"}}
	same := keyseal.KeyRef{Provider: "aws-kms", KeyID: "k", Access: map[string]string{"external_id": "x", "role_arn": "r"}}
	for _, other := range []keyseal.KeyRef{
		{Provider: "aws-kms", KeyID: "k"},
		{Provider: "aws-kms", KeyID: "k2", Access: a.Access},
		{Provider: "local", KeyID: "k", Access: a.Access},
		{Provider: "aws-kms", KeyID: "k", Access: map[string]string{"role_arn": "r", "external_id": "y"}},
		{Provider: "aws-kms", KeyID: "k", Access: map[string]string{"role_arn": "r", "service_account": "x"}},
	} {
		if a.Equal(other) || other.Equal(a) {
			t.Errorf("%+v equals %+v", a, other)
		}
	}
	if !a.Equal(same) || !(keyseal.KeyRef{KeyID: "k"}).Equal(keyseal.KeyRef{KeyID: "k", Access: map[string]string{}}) {
		t.Error("equal keys compare unequal")
	}
}

func TestTenantIDAndShard(t *testing.T) {
	for _, id := range []string{"a", "acme-1", "A_b", strings.Repeat("x", 64)} {
		if !keyseal.ValidTenantID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "-a", "_a", "a b", "a/b", "ä", strings.Repeat("x", 65), "a\n"} {
		if keyseal.ValidTenantID(id) {
			t.Errorf("%q accepted", id)
		}
	}
	seen := map[int]bool{}
	for i := range 1000 {
		s := keyseal.ShardOf(fmt.Sprintf("tenant-%d", i))
		if s < 0 || s >= keyseal.PollShards {
			t.Fatalf("shard %d out of range", s)
		}
		seen[s] = true
	}
	if len(seen) != keyseal.PollShards {
		t.Fatalf("1000 tenants use %d of %d shards", len(seen), keyseal.PollShards)
	}
	// The shard is part of the stored index: it must never change for an id.
	if got := keyseal.ShardOf("acme"); got != 15 { // FNV-1a 32 of "acme" mod 16
		t.Fatalf("ShardOf(acme) = %d; the FNV-1a shard of a stored tenant moved", got)
	}
}

func TestTenantCloneIsDeep(t *testing.T) {
	now := time.Now()
	t1 := &keyseal.Tenant{ID: "a", SealedSince: &now, LastVerifiedAt: &now}
	c := t1.Clone()
	*c.SealedSince = now.Add(time.Hour)
	*c.LastVerifiedAt = now.Add(time.Hour)
	if !t1.SealedSince.Equal(now) || !t1.LastVerifiedAt.Equal(now) {
		t.Fatal("Clone shares the time pointers")
	}
}

func TestVersionBlob(t *testing.T) {
	v := keyseal.TMKVersion{Wrapped: []byte("b"), KeyVersion: "3"}
	if w := v.Blob(); string(w.Blob) != "b" || w.KeyVersion != "3" {
		t.Fatalf("Blob() = %+v", w)
	}
}

// TestAuditEntryJSONRoundTrip: an entry, corrupt or not, reads back as it
// was written (the API's listings are decoded by shared/client).
func TestAuditEntryJSONRoundTrip(t *testing.T) {
	for _, in := range []keyseal.AuditEntry{
		{TenantID: "demo", Seq: 3, TS: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: "byok.kms.unseal", Severity: "critical",
			Actor: "admin:alice", Details: map[string]string{"trigger": "admin"}, PrevHash: "p", Hash: "h"},
		{Seq: 2, Corrupt: true},
	} {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out keyseal.AuditEntry
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("%s read back as %+v, want %+v", b, out, in)
		}
	}
}

// TestValidNameMatchesTheRegexps: ValidTenantID and the waiver's version
// check (ValidName) agree with the regexps they replaced on random
// strings over letters, digits, the symbols and near misses.
func TestValidNameMatchesTheRegexps(t *testing.T) {
	tenant := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	version := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	alphabet := []rune("aZ09_-./ \n\x00é\u212a")
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50000 {
		r := make([]rune, rng.IntN(68))
		clean := rng.IntN(2) == 0 // at most one odd character, so long valid names occur
		for i := range r {
			r[i] = alphabet[rng.IntN(7)]
			if !clean || rng.IntN(len(r)) == 0 {
				r[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		s := string(r)
		if got, want := keyseal.ValidTenantID(s), tenant.MatchString(s); got != want {
			t.Fatalf("ValidTenantID(%q) = %v, the regexp says %v", s, got, want)
		}
		if got, want := keyseal.ValidName(s, 64, "._-"), version.MatchString(s); got != want {
			t.Fatalf("ValidName(%q, 64, \"._-\") = %v, the regexp says %v", s, got, want)
		}
	}
}
