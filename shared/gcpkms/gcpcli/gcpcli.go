// Package gcpcli builds the gcloud commands and IAM bindings a customer
// uses to grant keyseal a Cloud KMS key and to fix it when it fails. It
// imports no Google SDK, so the HTTP layer can answer the key-policy
// route without linking the Cloud KMS client.
package gcpcli

import (
	"strings"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Roles a customer grants on a CryptoKey (or on its service account).
const (
	RoleEncrypterDecrypter = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
	RoleTokenCreator       = "roles/iam.serviceAccountTokenCreator"
	RoleViewer             = "roles/cloudkms.viewer"
)

// PlaceholderServiceAccount stands for keyseal's service account in the
// commands of a server that was not told it (KEYSEAL_GCP_SERVICE_ACCOUNT).
const PlaceholderServiceAccount = "KEYSEAL_SERVICE_ACCOUNT"

// AccessServiceAccount is the Access field of a gcp-kms KeyRef naming the
// customer's service account (gcpkms.AccessServiceAccount).
const AccessServiceAccount = "service_account"

// ExpectedKeyName is a CryptoKey name's form; its parts are the
// placeholders of commands for no key in particular.
const ExpectedKeyName = "projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY"

// keyArgs are a CryptoKey's gcloud arguments.
type keyArgs struct {
	key     string // K
	project string // P
	flags   string // --keyring R --location L --project P
}

// argsOf splits a CryptoKey name; an empty or malformed one gives the
// placeholders of ExpectedKeyName.
func argsOf(name string) keyArgs {
	p := strings.Split(name, "/")
	if len(p) != 8 || p[0] != "projects" || p[2] != "locations" || p[4] != "keyRings" || p[6] != "cryptoKeys" {
		p = strings.Split(ExpectedKeyName, "/")
	}
	return keyArgs{key: p[7], project: p[1], flags: "--keyring " + p[5] + " --location " + p[3] + " --project " + p[1]}
}

// member is the principal the key's IAM policy must name for key: the
// customer's service account keyseal impersonates, else keyseal's own.
func member(self string, key keyseal.KeyRef) string {
	if sa := key.Access[AccessServiceAccount]; sa != "" {
		return sa
	}
	return orPlaceholder(self)
}

func orPlaceholder(self string) string {
	if self == "" {
		return PlaceholderServiceAccount
	}
	return self
}

// Binding is one IAM role binding a customer makes.
type Binding struct {
	Role string `json:"role"`
	// Resource is the CryptoKey name, or the service account the binding
	// is made on.
	Resource string `json:"resource"`
	Member   string `json:"member"`
	Required bool   `json:"required"`
	Why      string `json:"why"`
	Command  string `json:"command"`
}

// Grant is what a customer grants keyseal on a Cloud KMS key: the answer
// of GET /admin/tenant-kms/key-policy for gcp-kms, and required_grant of a
// cannot_access_cmk about a gcp-kms key.
type Grant struct {
	Provider string `json:"provider"`
	// ServiceAccount is keyseal's own identity.
	ServiceAccount string `json:"service_account"`
	// Member is who the key's IAM policy names (serviceAccount:EMAIL).
	Member   string    `json:"member"`
	Bindings []Binding `json:"bindings"`
	// Commands are the required bindings' commands, in order.
	Commands []string `json:"commands"`
	Verify   string   `json:"verify"`
}

// GrantFor returns the bindings that let keyseal (service account self)
// use key. A zero key fills the commands with ExpectedKeyName's
// placeholders.
func GrantFor(self string, key keyseal.KeyRef) Grant {
	a := argsOf(key.KeyID)
	resource := key.KeyID
	if resource == "" {
		resource = ExpectedKeyName
	}
	m := "serviceAccount:" + member(self, key)
	g := Grant{Provider: keyseal.ProviderGCP, ServiceAccount: orPlaceholder(self), Member: m, Verify: verifyCommand(a)}
	g.Bindings = append(g.Bindings, Binding{Role: RoleEncrypterDecrypter, Resource: resource, Member: m, Required: true,
		Why:     "Encrypt and Decrypt on the key: keyseal wraps and unwraps the tenant's master key with it",
		Command: bindKey(a, m, RoleEncrypterDecrypter)})
	if sa := key.Access[AccessServiceAccount]; sa != "" {
		g.Bindings = append(g.Bindings, Binding{Role: RoleTokenCreator, Resource: sa, Member: "serviceAccount:" + g.ServiceAccount, Required: true,
			Why:     "keyseal impersonates " + sa + " to call Cloud KMS",
			Command: tokenCreator(sa, g.ServiceAccount)})
	}
	g.Bindings = append(g.Bindings, Binding{Role: RoleViewer, Resource: resource, Member: m,
		Why:     "optional: GetCryptoKey (cloudkms.cryptoKeys.get, which " + RoleEncrypterDecrypter + " lacks) lets health read the key's state; without it key_state is Unknown",
		Command: bindKey(a, m, RoleViewer)})
	for _, b := range g.Bindings {
		if b.Required {
			g.Commands = append(g.Commands, b.Command)
		}
	}
	return g
}

func bindKey(a keyArgs, m, role string) string {
	return "gcloud kms keys add-iam-policy-binding " + a.key + " " + a.flags + " --member " + m + " --role " + role
}

func tokenCreator(sa, self string) string {
	return "gcloud iam service-accounts add-iam-policy-binding " + sa + " --member serviceAccount:" + self + " --role " + RoleTokenCreator
}

func verifyCommand(a keyArgs) string {
	return "gcloud kms keys describe " + a.key + " " + a.flags + " --format='value(primary.state)'"
}

// Advise returns the gcloud steps that fix f on key for keyseal's service
// account self (see keyseal.Advisor), nil for a problem it has none for.
// The version to enable or restore is the one that wrapped the active TMK
// (what unsealing needs, known without any read permission), else a
// command substitution that finds the primary version.
func Advise(self string, key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy {
	a := argsOf(key.KeyID)
	version := "\"$(gcloud kms keys describe " + a.key + " " + a.flags + " --format='value(primary.name.basename())')\""
	if rest, ok := strings.CutPrefix(f.KeyVersion, key.KeyID+"/cryptoKeyVersions/"); ok && rest != "" && !strings.Contains(rest, "/") {
		version = f.KeyVersion[strings.LastIndex(f.KeyVersion, "/")+1:]
	}
	versionCmd := func(verb string) string {
		return "gcloud kms keys versions " + verb + " " + version + " --key " + a.key + " " + a.flags
	}
	enable := keyseal.Remedy{Action: "enable-key-version", Command: versionCmd("enable")}
	verify := keyseal.Remedy{Action: "verify", Command: verifyCommand(a)}
	switch f.Problem {
	case keyseal.ReasonKeyDisabled:
		return []keyseal.Remedy{enable, verify}
	case keyseal.ReasonPendingDeletion:
		// A restored version is DISABLED: it must be enabled too.
		return []keyseal.Remedy{{Action: "restore-key-version", Command: versionCmd("restore")}, enable, verify}
	case keyseal.ReasonAccessDenied:
		m := "serviceAccount:" + member(self, key)
		r := []keyseal.Remedy{{Action: "grant-encrypter-decrypter", Command: bindKey(a, m, RoleEncrypterDecrypter)}}
		if sa := key.Access[AccessServiceAccount]; sa != "" {
			r = append(r, keyseal.Remedy{Action: "grant-token-creator", Command: tokenCreator(sa, orPlaceholder(self))})
		}
		return append(r, keyseal.Remedy{Action: "check-key-iam-policy", Command: "gcloud kms keys get-iam-policy " + a.key + " " + a.flags})
	case keyseal.ReasonKeyNotFound:
		return []keyseal.Remedy{{Action: "describe-key", Command: "gcloud kms keys describe " + a.key + " " + a.flags},
			{Action: "list-keys", Command: "gcloud kms keys list " + a.flags}}
	case keyseal.ReasonInvalidBlob:
		return []keyseal.Remedy{{Action: "list-key-versions", Command: "gcloud kms keys versions list --key " + a.key + " " + a.flags}}
	case keyseal.ReasonUnreachable:
		return []keyseal.Remedy{{Action: "check-kms-api", Command: "gcloud services list --enabled --project " + a.project + " --filter=config.name=cloudkms.googleapis.com"}, verify}
	case keyseal.ProblemSlow:
		return []keyseal.Remedy{{Action: "check-kms-quota", Command: "gcloud alpha services quota list --service=cloudkms.googleapis.com --consumer=projects/" + a.project}}
	}
	return nil
}
