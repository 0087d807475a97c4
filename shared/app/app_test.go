package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/app"
)

// TestNewAWSNamesMissingConfiguration: a Lambda started without its
// settings fails its init with every missing variable named, instead of
// serving half-configured.
func TestNewAWSNamesMissingConfiguration(t *testing.T) {
	env := map[string]string{"KEYSEAL_TMK_CACHE_TTL": "forever"}
	_, err := app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true, Events: true})
	if err == nil {
		t.Fatal("NewAWS accepted an empty configuration")
	}
	// A bad value is reported first, on its own.
	if !strings.Contains(err.Error(), "KEYSEAL_TMK_CACHE_TTL") {
		t.Fatalf("error does not name the bad variable: %v", err)
	}
	delete(env, "KEYSEAL_TMK_CACHE_TTL")
	_, err = app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true, Events: true})
	if err == nil {
		t.Fatal("NewAWS accepted an empty configuration")
	}
	for _, name := range []string{"KEYSEAL_TABLE", "KEYSEAL_PLATFORM_KEY_ID"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	env["KEYSEAL_TABLE"], env["KEYSEAL_PLATFORM_KEY_ID"] = "t", "k"
	_, err = app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true, Events: true})
	for _, name := range []string{"KEYSEAL_EVENT_BUS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	env["KEYSEAL_EVENT_BUS"] = "b"
	_, err = app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true, Events: true})
	for _, name := range []string{"KEYSEAL_ADMIN_ISSUER", "KEYSEAL_ADMIN_AUDIENCE", "JWKS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
