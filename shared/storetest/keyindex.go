package storetest

import (
	"slices"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func keyIndexTests() []test {
	return []test{
		{"TenantsByKey/Create", testTenantsByKeyCreate},
		{"TenantsByKey/Migrate", testTenantsByKeyMigrate},
		{"TenantsByKey/Deregister", testTenantsByKeyDeregister},
		{"TenantsByKey/PlatformKeyNotIndexed", testTenantsByKeyPlatform},
		{"KeysInUse", testKeysInUse},
	}
}

// tenantsByKey fetches the index's answer for one key.
func tenantsByKey(t *testing.T, s keyseal.Store, k keyseal.KeyRef) []string {
	t.Helper()
	ids, err := s.TenantsByKey(t.Context(), k.Provider, k.KeyID)
	if err != nil {
		t.Fatalf("TenantsByKey(%s, %s): %v", k.Provider, k.KeyID, err)
	}
	return ids
}

func wantTenants(t *testing.T, s keyseal.Store, k keyseal.KeyRef, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := tenantsByKey(t, s, k); !slices.Equal(got, want) || got == nil {
		t.Fatalf("TenantsByKey(%s) = %#v, want %#v", k.KeyID, got, want)
	}
}

// testTenantsByKeyCreate: two tenants sharing a key are both found,
// sorted; a key of another provider with the same id, or an unknown key,
// finds none.
func testTenantsByKeyCreate(t *testing.T, s keyseal.Store) {
	shared := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:eu-west-1:111122223333:key/shared"}
	for _, id := range []string{"zeta", "alpha"} {
		tn := newTenant(id)
		tn.Key.KeyID = shared.KeyID
		if err := s.CreateTenant(t.Context(), tn, newVersion(id, 1), newRecord(keyseal.ActionTenantProvision, "create")); err != nil {
			t.Fatal(err)
		}
	}
	other := createTenant(t, s, "other")
	wantTenants(t, s, shared, "alpha", "zeta")
	wantTenants(t, s, other.Key, "other")
	wantTenants(t, s, keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: shared.KeyID})
	wantTenants(t, s, keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: shared.KeyID + "x"})
}

// testTenantsByKeyMigrate: a tenant moved to another key is found under
// the new key only.
func testTenantsByKeyMigrate(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "acme")
	old := tn.Key
	tn.Key.KeyID = "arn:aws:kms:eu-west-1:111122223333:key/new"
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	wantTenants(t, s, old)
	wantTenants(t, s, tn.Key, "acme")
}

// testTenantsByKeyDeregister: a tenant back on the platform key leaves the
// index, and registering again brings it back.
func testTenantsByKeyDeregister(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "acme")
	byok := tn.Key
	tn.BYOK = false
	tn.Key = keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:eu-west-1:999999999999:key/platform"}
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	wantTenants(t, s, byok)
	wantTenants(t, s, tn.Key)
	tn.BYOK, tn.Key = true, byok
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	wantTenants(t, s, byok, "acme")
}

// testTenantsByKeyPlatform: tenants on the platform key are never indexed,
// however many share it.
func testTenantsByKeyPlatform(t *testing.T, s keyseal.Store) {
	tn := newTenant("acme")
	tn.BYOK = false
	if err := s.CreateTenant(t.Context(), tn, newVersion("acme", 1), newRecord(keyseal.ActionTenantProvision, "create")); err != nil {
		t.Fatal(err)
	}
	wantTenants(t, s, tn.Key)
}

// testKeysInUse: each key appears once however many tenants share it,
// sorted, per provider; a key leaves with its last tenant (migrate,
// deregister), and platform-key tenants never appear.
func testKeysInUse(t *testing.T, s keyseal.Store) {
	want := func(provider string, keys ...string) {
		t.Helper()
		if keys == nil {
			keys = []string{}
		}
		got, err := s.KeysInUse(t.Context(), provider)
		if err != nil {
			t.Fatalf("KeysInUse(%s): %v", provider, err)
		}
		if !slices.Equal(got, keys) || got == nil {
			t.Fatalf("KeysInUse(%s) = %#v, want %#v", provider, got, keys)
		}
	}
	want(keyseal.ProviderAWS)
	shared := "arn:aws:kms:eu-west-1:111122223333:key/shared"
	for _, id := range []string{"zeta", "alpha"} {
		tn := newTenant(id)
		tn.Key.KeyID = shared
		if err := s.CreateTenant(t.Context(), tn, newVersion(id, 1), newRecord(keyseal.ActionTenantProvision, "create")); err != nil {
			t.Fatal(err)
		}
	}
	acme := createTenant(t, s, "acme")
	plat := newTenant("plat")
	plat.BYOK = false
	plat.Key.KeyID = "arn:aws:kms:eu-west-1:999999999999:key/platform"
	if err := s.CreateTenant(t.Context(), plat, newVersion("plat", 1), newRecord(keyseal.ActionTenantProvision, "create")); err != nil {
		t.Fatal(err)
	}
	want(keyseal.ProviderAWS, acme.Key.KeyID, shared)
	want(keyseal.ProviderGCP)

	old := acme.Key.KeyID
	acme.Key.KeyID = "arn:aws:kms:us-east-1:444455556666:key/moved"
	if err := s.UpdateTenant(t.Context(), acme, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	want(keyseal.ProviderAWS, shared, acme.Key.KeyID)
	if slices.Contains([]string{shared, acme.Key.KeyID}, old) {
		t.Fatal("fixture: the old key must differ")
	}
	acme.BYOK = false
	acme.Key = plat.Key
	if err := s.UpdateTenant(t.Context(), acme, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	want(keyseal.ProviderAWS, shared)
}
