package awskms_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// fakeAWS speaks just enough of the KMS JSON 1.1 protocol and the STS query
// protocol for the real SDK clients: the KeyId of each request picks the
// answer. It records STS AssumeRole forms and KMS Authorization headers.
type fakeAWS struct {
	mu      sync.Mutex
	assumes []url.Values
	kmsAuth []string
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		f.kms(w, r, strings.TrimPrefix(target, "TrentService."), body)
		return
	}
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	f.assumes = append(f.assumes, form)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAASSUMED</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>tok</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/keyseal/keyseal</Arn><AssumedRoleId>AROA:keyseal</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult></AssumeRoleResponse>`)
}

func kmsError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": "fake " + code})
}

func (f *fakeAWS) kms(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	f.mu.Lock()
	f.kmsAuth = append(f.kmsAuth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	var in struct{ KeyId string }
	json.Unmarshal(body, &in)
	switch {
	case strings.Contains(in.KeyId, "denied"):
		kmsError(w, 400, "AccessDeniedException")
	case strings.Contains(in.KeyId, "disabled"):
		kmsError(w, 400, "DisabledException")
	case strings.Contains(in.KeyId, "deleting") && op == "DescribeKey":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": map[string]any{"KeyId": in.KeyId, "KeyState": "PendingDeletion"}})
	case strings.Contains(in.KeyId, "deleting"):
		kmsError(w, 400, "KMSInvalidStateException")
	case strings.Contains(in.KeyId, "internal"):
		kmsError(w, 500, "KMSInternalException")
	case strings.Contains(in.KeyId, "drop"):
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"CiphertextBlob": []byte("wrapped"), "KeyId": in.KeyId})
	}
}

func fakeConfig(url string) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBASE", "secret", "")}
}

// TestClassifyThroughTheRealSDK proves the classifier reads the errors the
// real SDK deserializes from KMS answers, and network failures.
func TestClassifyThroughTheRealSDK(t *testing.T) {
	srv := httptest.NewServer(&fakeAWS{})
	defer srv.Close()
	p := awskms.New(kms.NewFromConfig(fakeConfig(srv.URL)))
	cases := map[string]struct {
		terminal bool
		reason   string
	}{
		"denied":   {true, keyseal.ReasonAccessDenied},
		"disabled": {true, keyseal.ReasonKeyDisabled},
		"deleting": {true, keyseal.ReasonPendingDeletion},
		"internal": {false, keyseal.ReasonUnreachable},
		"drop":     {false, keyseal.ReasonUnreachable},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := p.Wrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-" + name}, []byte("x"), nil)
			var ke *keyseal.KMSError
			if !errors.As(err, &ke) || ke.Terminal != c.terminal || ke.Reason != c.reason {
				t.Fatalf("got %v, want terminal=%v reason=%s", err, c.terminal, c.reason)
			}
		})
	}
	if blob, err := p.Wrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-ok"}, []byte("x"), nil); err != nil || string(blob) != "wrapped" {
		t.Fatalf("healthy key: %q %v", blob, err)
	}
}

// TestRoleClientsAssumeTheCustomerRole: a key with a role is called with
// credentials from sts:AssumeRole carrying the ExternalId, one cached client
// per role.
func TestRoleClientsAssumeTheCustomerRole(t *testing.T) {
	fake := &fakeAWS{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	clientFor := awskms.RoleClients(cfg, sts.NewFromConfig(cfg))
	p := awskms.New(kms.NewFromConfig(cfg), awskms.WithAssumeRole(clientFor))
	role := "arn:aws:iam::111122223333:role/keyseal-access"
	key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-ok", RoleARN: role, ExternalID: "tenant-acme-7f3c"}
	for range 2 {
		if _, err := p.Wrap(context.Background(), key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if clientFor(role, "tenant-acme-7f3c") != clientFor(role, "tenant-acme-7f3c") {
		t.Fatal("RoleClients does not cache the client per role")
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.assumes) != 1 {
		t.Fatalf("%d AssumeRole calls for two wraps, want 1 (credentials cached)", len(fake.assumes))
	}
	a := fake.assumes[0]
	if a.Get("Action") != "AssumeRole" || a.Get("RoleArn") != role || a.Get("ExternalId") != "tenant-acme-7f3c" || a.Get("RoleSessionName") != "keyseal" {
		t.Fatalf("AssumeRole form: %v", a)
	}
	for _, h := range fake.kmsAuth {
		if !strings.Contains(h, "Credential=ASIAASSUMED/") {
			t.Fatalf("KMS call not signed with the assumed role's credentials: %s", h)
		}
	}
}
