package tenantkms

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func TestHealthStatus(t *testing.T) {
	terminal := &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonKeyDisabled}
	transient := &keyseal.KMSError{Reason: keyseal.ReasonUnreachable}
	for _, c := range []struct {
		name     string
		sealed   bool
		fail     *keyseal.KMSError
		tmkValid bool
		class    string
		want     string
	}{
		{"ok", false, nil, true, LatencyNormal, HealthHealthy},
		{"elevated", false, nil, true, LatencyElevated, HealthHealthy},
		{"high", false, nil, true, LatencyHigh, HealthDegraded},
		{"critical", false, nil, true, LatencyCritical, HealthDegraded},
		{"transient", false, transient, false, LatencyNormal, HealthDegraded},
		{"terminal", false, terminal, false, LatencyNormal, HealthUnhealthy},
		{"sealed though the key answers", true, nil, true, LatencyNormal, HealthUnhealthy},
		{"sealed and transient", true, transient, false, LatencyNormal, HealthUnhealthy},
		{"TMK does not match its version", false, nil, false, LatencyNormal, HealthUnhealthy},
	} {
		if got := healthStatus(c.sealed, c.fail, c.tmkValid, c.class); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestRemediationNamesTheKeyARN: seed 004's commands come filled in with
// the tenant's key ARN and its region (a cross-region key is reached where
// it lives).
func TestRemediationNamesTheKeyARN(t *testing.T) {
	const arn = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
	tn := &keyseal.Tenant{ID: "t1", BYOK: true, Status: keyseal.StatusActive,
		Key: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: arn, Access: map[string]string{"role_arn": "arn:aws:iam::111122223333:role/keyseal-byok"}}}
	for _, c := range []struct {
		reason, keyState string
		want             []string
	}{
		{keyseal.ReasonKeyDisabled, keyseal.KeyStateDisabled, []string{"aws kms enable-key --key-id " + arn + " --region eu-west-1"}},
		{keyseal.ReasonPendingDeletion, keyseal.KeyStatePendingDeletion, []string{"aws kms cancel-key-deletion --key-id " + arn + " --region eu-west-1",
			"aws kms enable-key --key-id " + arn}},
		// KMS said disabled, DescribeKey says pending deletion: the
		// deletion is what must be cancelled first.
		{keyseal.ReasonKeyDisabled, keyseal.KeyStatePendingDeletion, []string{"aws kms cancel-key-deletion --key-id " + arn}},
		{keyseal.ReasonAccessDenied, keyseal.KeyStateUnknown, []string{"aws kms get-key-policy --key-id " + arn,
			"aws kms put-key-policy --key-id " + arn + " --region eu-west-1 --policy-name default --policy file://key-policy.json",
			"GET /admin/tenant-kms/key-policy", "aws iam get-role --role-name keyseal-byok"}},
		{keyseal.ReasonKeyNotFound, keyseal.KeyStateUnknown, []string{"aws kms describe-key --key-id " + arn}},
	} {
		fail := &keyseal.KMSError{Terminal: true, Reason: c.reason, Code: "X"}
		diag, rem := diagnose(awskms.New(nil), tn, fail, Health{Checks: HealthChecks{KeyState: c.keyState}}, "")
		var text strings.Builder
		for _, r := range rem {
			text.WriteString(r.Command + "\n")
		}
		if diag == "" {
			t.Errorf("%s/%s: no diagnosis", c.reason, c.keyState)
		}
		for _, w := range c.want {
			if !strings.Contains(text.String(), w) {
				t.Errorf("%s/%s: remediation lacks %q:\n%s", c.reason, c.keyState, w, text.String())
			}
		}
	}
}

// TestOwnCredentialsAreTheOperators: keyseal's own cloud credentials
// refused is never diagnosed as the customer's key or grant.
func TestOwnCredentialsAreTheOperators(t *testing.T) {
	for _, p := range []string{keyseal.ProviderGCP, keyseal.ProviderAzure} {
		tn := &keyseal.Tenant{ID: "t1", BYOK: true, Status: keyseal.StatusActive, Key: keyseal.KeyRef{Provider: p, KeyID: "k"}}
		fail := &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: keyseal.CodeOwnCredentialsRejected}
		diag, rem := diagnose(nil, tn, fail, Health{Checks: HealthChecks{KeyState: keyseal.KeyStateUnknown}}, "")
		if len(rem) != 1 || rem[0].Action != "contact-operator" || !strings.Contains(diag, "operator's to fix") || !strings.Contains(diag, p) {
			t.Errorf("%s: %q %+v", p, diag, rem)
		}
	}
}

// TestGenericRemediation: a provider without an Advisor (or with nothing
// for the problem) still gets steps naming the key.
func TestGenericRemediation(t *testing.T) {
	tn := &keyseal.Tenant{ID: "t1", BYOK: true, Status: keyseal.StatusActive, Key: keyseal.KeyRef{Provider: "other", KeyID: "key-9"}}
	for reason, want := range map[string]string{
		keyseal.ReasonKeyDisabled:     "enable-key: enable key key-9 in its key manager\nverify: GET /admin/tenant-kms/health\n",
		keyseal.ReasonPendingDeletion: "cancel-key-deletion: cancel the scheduled destruction of key key-9\nenable-key: enable key key-9 in its key manager\nverify: GET /admin/tenant-kms/health\n",
		keyseal.ReasonAccessDenied:    "restore-access: grant keyseal's identity wrap and unwrap on key key-9 again\n",
		keyseal.ReasonKeyNotFound:     "describe-key: look up key key-9 in its key manager\n",
	} {
		_, rem := diagnose(nil, tn, &keyseal.KMSError{Terminal: true, Reason: reason, Code: "X"}, Health{}, "")
		var got strings.Builder
		for _, r := range rem {
			got.WriteString(r.Action + ": " + r.Command + "\n")
		}
		if got.String() != want {
			t.Errorf("%s:\n%s\nwant\n%s", reason, got.String(), want)
		}
	}
}
