package gcpkms_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// iamFake answers generateAccessToken for the service accounts it allows,
// to keyseal's own token, ownToken.
type iamFake struct {
	mu      sync.Mutex
	allowed map[string]bool
	asked   []string
}

const ownToken = "keyseal-own-token"

func (f *iamFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// POST /v1/projects/-/serviceAccounts/SA:generateAccessToken
	sa := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/"), ":generateAccessToken")
	var body struct {
		Scope []string `json:"scope"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.asked = append(f.asked, sa)
	ok, known := f.allowed[sa]
	f.mu.Unlock()
	if r.Method != http.MethodPost || len(body.Scope) != 1 || body.Scope[0] != gcpkms.CloudPlatform {
		http.Error(w, `{"error":{"code":400,"message":"bad request","status":"INVALID_ARGUMENT"}}`, http.StatusBadRequest)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+ownToken {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`))
		return
	}
	if !known {
		http.Error(w, `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`, http.StatusServiceUnavailable)
		return
	}
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED"}}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"accessToken": "tok-" + sa, "expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
}

func (f *iamFake) set(sa string, allowed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allowed[sa] = allowed
}

func TestServiceAccountImpersonation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const sa = "tenant-kms@acme-prod.iam.gserviceaccount.com"
	iam := &iamFake{allowed: map[string]bool{sa: true}}
	srv := httptest.NewServer(iam)
	t.Cleanup(srv.Close)
	endpoints := gcpkms.Endpoints{KMS: e.fake.URL, IAMCredentials: srv.URL + "/"}

	// fresh stands for a provider whose cached token is gone, on keyseal's
	// own credentials own.
	fresh := func(own oauth2.TokenSource) *gcpkms.Provider {
		return gcpkms.New(e.client, gcpkms.WithServiceAccounts(gcpkms.ServiceAccountClients(own, endpoints)))
	}
	keyseals := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: ownToken})
	p := fresh(keyseals)
	key, err := p.ParseKey(map[string]string{"key_name": e.newKey(t).KeyID, "service_account": sa})
	if err != nil {
		t.Fatal(err)
	}

	w, err := p.Wrap(ctx, key, []byte("tmk"), ec)
	if err != nil {
		t.Fatalf("Wrap through the service account: %v", err)
	}
	if got := e.fake.LastAuthorization(); got != "Bearer tok-"+sa {
		t.Fatalf("KMS saw authorization %q, want the impersonated token", got)
	}
	if _, err := p.Unwrap(ctx, key, w, ec); err != nil {
		t.Fatalf("Unwrap through the service account: %v", err)
	}

	// The customer removes keyseal's tokenCreator binding: once the cached
	// token is gone the key is access_denied, terminal.
	iam.set(sa, false)
	_, err = fresh(keyseals).Unwrap(ctx, key, w, ec)
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || !ke.Terminal || ke.Reason != keyseal.ReasonAccessDenied || ke.Code != "PermissionDenied" {
		t.Fatalf("Unwrap after the binding was removed: %v, want terminal access_denied", err)
	}

	// The IAM Credentials API failing is a blip, not a revoked grant.
	key.Access[gcpkms.AccessServiceAccount] = "unknown-to-iam@acme-prod.iam.gserviceaccount.com"
	_, err = fresh(keyseals).Unwrap(ctx, key, w, ec)
	if !errors.As(err, &ke) || ke.Terminal || ke.Reason != keyseal.ReasonUnreachable || ke.Code != "Unavailable" {
		t.Fatalf("Unwrap with the IAM API failing: %v, want transient Unavailable", err)
	}

	// keyseal's own token refused by the IAM API, or not to be had at
	// all: keyseal's fault, never the customer's revocation.
	key.Access[gcpkms.AccessServiceAccount] = sa
	iam.set(sa, true)
	_, err = fresh(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "expired"})).Unwrap(ctx, key, w, ec)
	if !errors.As(err, &ke) || ke.Terminal || ke.Code != keyseal.CodeOwnCredentialsRejected {
		t.Fatalf("Unwrap with keyseal's own token refused: %v, want transient %s", err, keyseal.CodeOwnCredentialsRejected)
	}
	_, err = fresh(failingTokens{errors.New(`Post "https://sts.googleapis.com/v1/token": dial tcp: connection refused`)}).Unwrap(ctx, key, w, ec)
	if !errors.As(err, &ke) || ke.Terminal || ke.Code != "Unauthenticated" {
		t.Fatalf("Unwrap with keyseal's own token endpoint down: %v, want transient Unauthenticated", err)
	}
}

type failingTokens struct{ err error }

func (f failingTokens) Token() (*oauth2.Token, error) { return nil, f.err }

// TestOwnCredentialsClient: a client on keyseal's own credentials sends
// their token, and a token that cannot be had fails the call without it
// reaching Cloud KMS, transiently.
func TestOwnCredentialsClient(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	p := gcpkms.New(e.fake.Endpoints().Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: ownToken})))
	if _, err := p.Wrap(ctx, key, []byte("tmk"), ec); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.LastAuthorization(); got != "Bearer "+ownToken {
		t.Fatalf("KMS saw authorization %q, want keyseal's own token", got)
	}
	calls := e.fake.Calls()
	refused := &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusBadRequest}, ErrorCode: "invalid_grant"}
	_, err := gcpkms.New(e.fake.Endpoints().Client(failingTokens{refused})).Wrap(ctx, key, []byte("tmk"), ec)
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || ke.Terminal || ke.Code != keyseal.CodeOwnCredentialsRejected {
		t.Fatalf("Wrap with keyseal's credentials refused: %v, want transient %s", err, keyseal.CodeOwnCredentialsRejected)
	}
	if e.fake.Calls() != calls {
		t.Fatal("a call without a token reached Cloud KMS")
	}
}
