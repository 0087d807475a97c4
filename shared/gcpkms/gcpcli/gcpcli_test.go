package gcpcli_test

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/gcpkms/gcpcli"
	"github.com/keyseal/keyseal/shared/keyseal"
)

const (
	keyName = "projects/acme-prod/locations/europe-west1/keyRings/keyseal/cryptoKeys/tmk"
	self    = "keyseal@keyseal-prod.iam.gserviceaccount.com"
	custSA  = "byok@acme-prod.iam.gserviceaccount.com"
	flags   = "--keyring keyseal --location europe-west1 --project acme-prod"
)

func lines(r []keyseal.Remedy) string {
	var b strings.Builder
	for _, x := range r {
		b.WriteString(x.Action + ": " + x.Command + "\n")
	}
	return b.String()
}

// TestAdvise: the gcloud commands per reason, exact, for one CryptoKey,
// with and without the version that wrapped and a service account.
func TestAdvise(t *testing.T) {
	advise := func(key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy { return gcpcli.Advise(self, key, f) }
	key := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: keyName}
	viaSA := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: keyName, Access: map[string]string{gcpcli.AccessServiceAccount: custSA}}
	const v3 = keyName + "/cryptoKeyVersions/3"
	findPrimary := `"$(gcloud kms keys describe tmk ` + flags + ` --format='value(primary.name.basename())')"`
	verify := "verify: gcloud kms keys describe tmk " + flags + " --format='value(primary.state)'\n"
	for _, c := range []struct {
		name    string
		key     keyseal.KeyRef
		problem string
		version string
		want    string
	}{
		{"disabled", key, keyseal.ReasonKeyDisabled, v3,
			"enable-key-version: gcloud kms keys versions enable 3 --key tmk " + flags + "\n" + verify},
		{"disabled, version unknown", key, keyseal.ReasonKeyDisabled, "",
			"enable-key-version: gcloud kms keys versions enable " + findPrimary + " --key tmk " + flags + "\n" + verify},
		{"another key's version is not used", key, keyseal.ReasonKeyDisabled, "projects/x/locations/y/keyRings/z/cryptoKeys/w/cryptoKeyVersions/9",
			"enable-key-version: gcloud kms keys versions enable " + findPrimary + " --key tmk " + flags + "\n" + verify},
		{"destroy scheduled", key, keyseal.ReasonPendingDeletion, v3,
			"restore-key-version: gcloud kms keys versions restore 3 --key tmk " + flags + "\n" +
				"enable-key-version: gcloud kms keys versions enable 3 --key tmk " + flags + "\n" + verify},
		{"access denied", key, keyseal.ReasonAccessDenied, "",
			"grant-encrypter-decrypter: gcloud kms keys add-iam-policy-binding tmk " + flags + " --member serviceAccount:" + self + " --role roles/cloudkms.cryptoKeyEncrypterDecrypter\n" +
				"check-key-iam-policy: gcloud kms keys get-iam-policy tmk " + flags + "\n"},
		{"access denied, impersonated", viaSA, keyseal.ReasonAccessDenied, "",
			"grant-encrypter-decrypter: gcloud kms keys add-iam-policy-binding tmk " + flags + " --member serviceAccount:" + custSA + " --role roles/cloudkms.cryptoKeyEncrypterDecrypter\n" +
				"grant-token-creator: gcloud iam service-accounts add-iam-policy-binding " + custSA + " --member serviceAccount:" + self + " --role roles/iam.serviceAccountTokenCreator\n" +
				"check-key-iam-policy: gcloud kms keys get-iam-policy tmk " + flags + "\n"},
		{"not found", key, keyseal.ReasonKeyNotFound, "",
			"describe-key: gcloud kms keys describe tmk " + flags + "\n" + "list-keys: gcloud kms keys list " + flags + "\n"},
		{"invalid blob", key, keyseal.ReasonInvalidBlob, "",
			"list-key-versions: gcloud kms keys versions list --key tmk " + flags + "\n"},
		{"unreachable", key, keyseal.ReasonUnreachable, "",
			"check-kms-api: gcloud services list --enabled --project acme-prod --filter=config.name=cloudkms.googleapis.com\n" + verify},
		{"slow", key, keyseal.ProblemSlow, "",
			"check-kms-quota: gcloud alpha services quota list --service=cloudkms.googleapis.com --consumer=projects/acme-prod\n"},
		{"unknown problem", key, "something-else", "", ""},
	} {
		got := lines(advise(c.key, keyseal.Finding{Problem: c.problem, KeyVersion: c.version}))
		if got != c.want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
}

// TestGrantFor: the required binding, the token creator binding when the
// key names a service account, and roles/cloudkms.viewer as optional.
func TestGrantFor(t *testing.T) {
	g := gcpcli.GrantFor(self, keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: keyName})
	if g.Provider != keyseal.ProviderGCP || g.ServiceAccount != self || g.Member != "serviceAccount:"+self || len(g.Bindings) != 2 ||
		g.Bindings[0].Role != gcpcli.RoleEncrypterDecrypter || !g.Bindings[0].Required || g.Bindings[0].Resource != keyName ||
		g.Bindings[1].Role != gcpcli.RoleViewer || g.Bindings[1].Required || !strings.Contains(g.Bindings[1].Why, "key_state is Unknown") ||
		len(g.Commands) != 1 || g.Commands[0] != "gcloud kms keys add-iam-policy-binding tmk "+flags+" --member serviceAccount:"+self+" --role roles/cloudkms.cryptoKeyEncrypterDecrypter" ||
		g.Verify != "gcloud kms keys describe tmk "+flags+" --format='value(primary.state)'" {
		t.Fatalf("grant = %+v", g)
	}
	s := gcpcli.GrantFor(self, keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: keyName, Access: map[string]string{gcpcli.AccessServiceAccount: custSA}})
	if s.Member != "serviceAccount:"+custSA || len(s.Bindings) != 3 || s.Bindings[1].Role != gcpcli.RoleTokenCreator || s.Bindings[1].Resource != custSA ||
		s.Bindings[1].Member != "serviceAccount:"+self || len(s.Commands) != 2 ||
		s.Commands[1] != "gcloud iam service-accounts add-iam-policy-binding "+custSA+" --member serviceAccount:"+self+" --role roles/iam.serviceAccountTokenCreator" {
		t.Fatalf("impersonation grant = %+v", s)
	}
	z := gcpcli.GrantFor("", keyseal.KeyRef{})
	if z.ServiceAccount != gcpcli.PlaceholderServiceAccount || z.Bindings[0].Resource != gcpcli.ExpectedKeyName ||
		z.Commands[0] != "gcloud kms keys add-iam-policy-binding KEY --keyring RING --location LOCATION --project PROJECT --member serviceAccount:KEYSEAL_SERVICE_ACCOUNT --role roles/cloudkms.cryptoKeyEncrypterDecrypter" {
		t.Fatalf("placeholder grant = %+v", z)
	}
}
