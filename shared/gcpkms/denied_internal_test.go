package gcpkms

import (
	"errors"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyseal/keyseal/shared/keyseal"
)

type failingTokens struct{ err error }

func (f failingTokens) Token() (*oauth2.Token, error) { return nil, f.err }

// TestOwnBaseCredentialsRefusedNeverSeal: when impersonating the
// customer's account fails because keyseal's own base credentials were
// refused (its federated identity, its own service account), the call is
// the transient CodeOwnCredentialsRejected, not the customer's revocation.
func TestOwnBaseCredentialsRefusedNeverSeal(t *testing.T) {
	cases := []struct {
		err  string
		code string
	}{
		{`impersonate: unable to generate access token: Post "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/kms@acme.iam.gserviceaccount.com:generateAccessToken": credentials: status code 403: {"error":{"code":403,"status":"PERMISSION_DENIED"}}`, keyseal.CodeOwnCredentialsRejected},
		{`impersonate: unable to generate access token: Post "...": credentials: status code 400: {"error":"invalid_grant"}`, keyseal.CodeOwnCredentialsRejected},
		{`impersonate: status code 403: {"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied","status":"PERMISSION_DENIED"}}`, "PermissionDenied"},
	}
	for _, c := range cases {
		_, err := deniedTokens{failingTokens{errors.New(c.err)}}.Token()
		if got := Classify(err); got.Code != c.code || (c.code == keyseal.CodeOwnCredentialsRejected && got.Terminal) {
			t.Errorf("%s: classified %v terminal=%v, want %s", c.err, got.Code, got.Terminal, c.code)
		}
	}
}
