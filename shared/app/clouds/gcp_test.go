//go:build !keyseal_nogcp

package clouds_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/app/clouds"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpkmsfake"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// googleAuth is Google's OAuth token endpoint for one service account key
// (the JWT bearer grant, its RS256 signature checked) and the IAM
// Credentials API's generateAccessToken, which takes only the token the
// first minted.
type googleAuth struct {
	key     *rsa.PublicKey
	email   string
	minted  string
	granted map[string]string // impersonated account -> its token
}

func (g *googleAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/token" {
		if r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || !g.signed(r.FormValue("assertion")) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": g.minted, "token_type": "Bearer", "expires_in": 3600})
		return
	}
	sa := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/-/serviceAccounts/"), ":generateAccessToken")
	tok, ok := g.granted[sa]
	if r.Header.Get("Authorization") != "Bearer "+g.minted || !ok {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED"}}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"accessToken": tok, "expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
}

// signed reports whether assertion is a JWT of g's service account,
// signed by its key.
func (g *googleAuth) signed(assertion string) bool {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(g.key, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
	}
	return json.Unmarshal(claims, &c) == nil && c.Iss == g.email && c.Scope == gcpkms.CloudPlatform
}

// TestGCPOwnCredentialsEndToEnd: the provider Providers builds from a
// service account JSON gets its token from the key's token_uri (a signed
// JWT, through golang.org/x/oauth2), sends it to Cloud KMS, and
// impersonates a key's service account with it; a key whose account does
// not let keyseal impersonate it is access_denied.
func TestGCPOwnCredentialsEndToEnd(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	const email, customerSA = "keyseal@keyseal-prod.iam.gserviceaccount.com", "byok-kms@acme-prod.iam.gserviceaccount.com"
	auth := &googleAuth{key: &k.PublicKey, email: email, minted: "ya29.keyseal", granted: map[string]string{customerSA: "ya29.acme"}}
	srv := httptest.NewServer(auth)
	t.Cleanup(srv.Close)
	creds, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "keyseal-prod", "private_key_id": "abc",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "client_email": email, "client_id": "1",
		"token_uri": srv.URL + "/token"})
	fake, err := gcpkmsfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	const name = "projects/acme-prod/locations/global/keyRings/byok/cryptoKeys/tmk"
	if err := fake.CreateKey(name); err != nil {
		t.Fatal(err)
	}

	ps, err := clouds.Providers(context.Background(), config.Config{GCP: config.GCP{Credentials: string(creds)}}, nil,
		clouds.WithGCPEndpoints(gcpkms.Endpoints{KMS: fake.URL, IAMCredentials: srv.URL + "/"}))
	if err != nil {
		t.Fatal(err)
	}
	p := ps[keyseal.ProviderGCP]
	ctx := context.Background()
	ec := map[string]string{"keyseal:tenant": "acme"}
	for _, c := range []struct {
		sa, bearer string
	}{{"", "Bearer ya29.keyseal"}, {customerSA, "Bearer ya29.acme"}} {
		fields := map[string]string{"key_name": name}
		if c.sa != "" {
			fields[gcpkms.AccessServiceAccount] = c.sa
		}
		key, err := p.ParseKey(fields)
		if err != nil {
			t.Fatal(err)
		}
		w, err := p.Wrap(ctx, key, []byte("tmk"), ec)
		if err != nil {
			t.Fatalf("Wrap as %q: %v", c.sa, err)
		}
		if got := fake.LastAuthorization(); got != c.bearer {
			t.Fatalf("Cloud KMS saw %q, want %q", got, c.bearer)
		}
		if pt, err := p.Unwrap(ctx, key, w, ec); err != nil || string(pt) != "tmk" {
			t.Fatalf("Unwrap as %q: %q, %v", c.sa, pt, err)
		}
	}

	key, err := p.ParseKey(map[string]string{"key_name": name, gcpkms.AccessServiceAccount: "other-sa@acme-prod.iam.gserviceaccount.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Wrap(ctx, key, []byte("tmk"), ec)
	if ke := gcpkms.Classify(err); err == nil || !ke.Terminal || ke.Reason != keyseal.ReasonAccessDenied {
		t.Fatalf("Wrap through an account keyseal may not impersonate: %v, want terminal access_denied", err)
	}
}
