package gcpkms_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// iamFake answers generateAccessToken for the service accounts it allows.
type iamFake struct {
	mu      sync.Mutex
	allowed map[string]bool
	asked   []string
}

func (f *iamFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// POST /v1/projects/-/serviceAccounts/SA:generateAccessToken
	sa := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/"), ":generateAccessToken")
	f.mu.Lock()
	f.asked = append(f.asked, sa)
	ok, known := f.allowed[sa]
	f.mu.Unlock()
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

// toServer sends every request to one loopback server, whatever its host.
type toServer struct{ u *url.URL }

func (t toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = t.u.Scheme, t.u.Host
	return http.DefaultTransport.RoundTrip(r)
}

func TestServiceAccountImpersonation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const sa = "tenant-kms@acme-prod.iam.gserviceaccount.com"
	iam := &iamFake{allowed: map[string]bool{sa: true}}
	srv := httptest.NewServer(iam)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)

	// fresh stands for a provider whose cached token is gone.
	fresh := func() *gcpkms.Provider {
		return gcpkms.New(e.client, gcpkms.WithServiceAccounts(gcpkms.ServiceAccountClients(ctx,
			[]option.ClientOption{option.WithHTTPClient(&http.Client{Transport: toServer{u}})},
			[]option.ClientOption{option.WithEndpoint(e.fake.Addr), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))})))
	}
	p := fresh()
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
	_, err = fresh().Unwrap(ctx, key, w, ec)
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || !ke.Terminal || ke.Reason != keyseal.ReasonAccessDenied || ke.Code != "PermissionDenied" {
		t.Fatalf("Unwrap after the binding was removed: %v, want terminal access_denied", err)
	}

	// The IAM Credentials API failing is a blip, not a revoked grant.
	key.Access[gcpkms.AccessServiceAccount] = "unknown-to-iam@acme-prod.iam.gserviceaccount.com"
	_, err = fresh().Unwrap(ctx, key, w, ec)
	if !errors.As(err, &ke) || ke.Terminal || ke.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("Unwrap with the IAM API failing: %v, want transient", err)
	}
}
