package azurekv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// TestAdviseNamesTheIdentity: the provider's advice assigns the role to
// the client id it was built with.
func TestAdviseNamesTheIdentity(t *testing.T) {
	const id = "11111111-2222-3333-4444-555555555555"
	key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme-keys.vault.azure.net/keys/tmk"}
	r := azurekv.New(nil, azurekv.WithIdentity(id)).Advise(key, keyseal.Finding{Problem: keyseal.ReasonAccessDenied})
	if len(r) < 2 || !strings.Contains(r[1].Command, "--assignee "+id+" ") {
		t.Fatalf("advice = %+v", r)
	}
}

// TestKeyState: GetKey's enabled attribute through the real client; a
// deleted or denied key is Unknown with the classified error.
func TestKeyState(t *testing.T) {
	ctx := context.Background()
	fake := azurekvfake.New(t)
	p := newProvider(fake)
	key := newKey(t, fake)
	state := func() (string, error) { return p.KeyState(ctx, key) }
	if s, err := state(); err != nil || s != keyseal.KeyStateEnabled {
		t.Fatalf("enabled: %s, %v", s, err)
	}
	must(t, fake.SetEnabled(key.KeyID, false))
	if s, err := state(); err != nil || s != keyseal.KeyStateDisabled {
		t.Fatalf("disabled: %s, %v", s, err)
	}
	must(t, fake.SetEnabled(key.KeyID, true))
	must(t, fake.SetDenied(key.KeyID, true))
	s, err := state()
	wantKMS(t, "KeyState denied", err, true, keyseal.ReasonAccessDenied, "")
	if s != keyseal.KeyStateUnknown {
		t.Fatalf("denied: state %s", s)
	}
	must(t, fake.SetDenied(key.KeyID, false))
	must(t, fake.SetDeleted(key.KeyID, true))
	s, err = state()
	wantKMS(t, "KeyState deleted", err, true, keyseal.ReasonKeyNotFound, "KeyNotFound")
	if s != keyseal.KeyStateUnknown {
		t.Fatalf("deleted: state %s", s)
	}
}
