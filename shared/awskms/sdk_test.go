package awskms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/keyseal/keyseal/shared/awskms/roles"
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
	// The customer's role can refuse keyseal: its trust policy no longer
	// names keyseal (or the external ID changed), or keyseal's own session
	// expired.
	switch role := form.Get("RoleArn"); {
	case strings.Contains(role, "untrusted"):
		stsError(w, http.StatusForbidden, "AccessDenied")
		return
	case strings.Contains(role, "expired"):
		stsError(w, http.StatusForbidden, "ExpiredToken")
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAASSUMED</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>tok</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/keyseal/keyseal</Arn><AssumedRoleId>AROA:keyseal</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult></AssumeRoleResponse>`)
}

// stsError answers the way STS's query protocol reports an error.
func stsError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
		`<Code>%s</Code><Message>fake %s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, code, code)
}

// kmsError answers the way KMS's JSON 1.1 protocol reports an error.
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
	case op == "Decrypt":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"Plaintext": []byte("unwrapped"), "KeyId": in.KeyId})
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
		code     string
	}{
		"denied":   {true, keyseal.ReasonAccessDenied, "AccessDeniedException"},
		"disabled": {true, keyseal.ReasonKeyDisabled, "DisabledException"},
		"deleting": {true, keyseal.ReasonPendingDeletion, "KMSInvalidStateException"},
		"internal": {false, keyseal.ReasonUnreachable, "KMSInternalException"},
		"drop":     {false, keyseal.ReasonUnreachable, "NetworkError"},
	}
	ctx := context.Background()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-" + name}
			_, werr := p.Wrap(ctx, key, []byte("x"), nil)
			_, uerr := p.Unwrap(ctx, key, keyseal.Wrapped{Blob: []byte("wrapped")}, nil)
			for op, err := range map[string]error{"Wrap": werr, "Unwrap": uerr} {
				var ke *keyseal.KMSError
				if !errors.As(err, &ke) || ke.Terminal != c.terminal || ke.Reason != c.reason || ke.Code != c.code {
					t.Fatalf("%s: got %v (code %v), want terminal=%v reason=%s code=%s", op, err, codeOf(err), c.terminal, c.reason, c.code)
				}
			}
		})
	}
	key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-ok"}
	if blob, err := p.Wrap(ctx, key, []byte("x"), nil); err != nil || string(blob.Blob) != "wrapped" {
		t.Fatalf("healthy key wrap: %q %v", blob, err)
	}
	if plain, err := p.Unwrap(ctx, key, keyseal.Wrapped{Blob: []byte("wrapped")}, nil); err != nil || string(plain) != "unwrapped" {
		t.Fatalf("healthy key unwrap: %q %v", plain, err)
	}
}

func codeOf(err error) string {
	var ke *keyseal.KMSError
	if errors.As(err, &ke) {
		return ke.Code
	}
	return "none"
}

// TestRefusedRoleIsTerminal: when STS refuses to let keyseal assume the
// customer's role, the STS error surfaces through stscreds, the credentials
// cache and the KMS client's wrapping, and seals as access denied.
func TestRefusedRoleIsTerminal(t *testing.T) {
	srv := httptest.NewServer(&fakeAWS{})
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	p := awskms.New(kms.NewFromConfig(cfg), awskms.WithAssumeRole(roles.Clients(cfg, sts.NewFromConfig(cfg))))
	for role, code := range map[string]string{
		"arn:aws:iam::111122223333:role/untrusted": "AccessDenied",
		"arn:aws:iam::111122223333:role/expired":   "ExpiredToken",
	} {
		key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-ok", Access: map[string]string{awskms.AccessRoleARN: role, awskms.AccessExternalID: "ext"}}
		_, err := p.Unwrap(context.Background(), key, keyseal.Wrapped{Blob: []byte("wrapped")}, nil)
		var ke *keyseal.KMSError
		if !errors.As(err, &ke) || !ke.Terminal || ke.Reason != keyseal.ReasonAccessDenied || ke.Code != code {
			t.Fatalf("%s: got %v (code %s), want terminal access_denied with code %s", role, err, codeOf(err), code)
		}
	}
}

// TestRolesAssumeTheCustomerRole: a key with a role is called with
// credentials from sts:AssumeRole carrying the ExternalId, one cached client
// per role.
func TestRolesAssumeTheCustomerRole(t *testing.T) {
	fake := &fakeAWS{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	clientFor := roles.Clients(cfg, sts.NewFromConfig(cfg))
	p := awskms.New(kms.NewFromConfig(cfg), awskms.WithAssumeRole(clientFor))
	role := "arn:aws:iam::111122223333:role/keyseal-access"
	key := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-ok", Access: map[string]string{awskms.AccessRoleARN: role, awskms.AccessExternalID: "tenant-acme-7f3c"}}
	for range 2 {
		if _, err := p.Wrap(context.Background(), key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if clientFor(role, "tenant-acme-7f3c") != clientFor(role, "tenant-acme-7f3c") {
		t.Fatal("roles.Clients does not cache the client per role")
	}
	if clientFor(role, "tenant-acme-7f3c") == clientFor(role, "tenant-other") {
		t.Fatal("two external IDs share one client (and so one set of role credentials)")
	}
	fake.mu.Lock()
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
	fake.mu.Unlock()

	// Another external ID for the same role is its own AssumeRole; a role
	// without one sends none.
	for _, ext := range []string{"tenant-other", ""} {
		key.Access = map[string]string{awskms.AccessRoleARN: key.Access[awskms.AccessRoleARN], awskms.AccessExternalID: ext}
		if _, err := p.Wrap(context.Background(), key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Keys without a role stay on keyseal's own credentials.
	if _, err := p.Wrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "key-ok"}, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.assumes) != 3 {
		t.Fatalf("%d AssumeRole calls, want 3 (one per external ID)", len(fake.assumes))
	}
	if got := fake.assumes[1].Get("ExternalId"); got != "tenant-other" {
		t.Fatalf("second AssumeRole ExternalId %q", got)
	}
	if _, ok := fake.assumes[2]["ExternalId"]; ok {
		t.Fatalf("AssumeRole without an external ID sent one: %v", fake.assumes[2])
	}
	if h := fake.kmsAuth[len(fake.kmsAuth)-1]; !strings.Contains(h, "Credential=AKIDBASE/") {
		t.Fatalf("a key without a role was not signed with the base credentials: %s", h)
	}
}

// TestCallsGoToTheKeysRegion: a customer's key ARN names its region, which
// need not be keyseal's; the request is signed for (and sent to) that region.
func TestCallsGoToTheKeysRegion(t *testing.T) {
	fake := &fakeAWS{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	p := awskms.New(kms.NewFromConfig(fakeConfig(srv.URL)))
	ctx := context.Background()
	for _, c := range []struct{ keyID, region string }{
		{"arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "eu-west-3"},
		{"arn:aws:kms:ap-southeast-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", "ap-southeast-2"},
		{"1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1"}, // a bare id keeps the client's region
	} {
		if _, err := p.Wrap(ctx, keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: c.keyID}, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		fake.mu.Lock()
		h := fake.kmsAuth[len(fake.kmsAuth)-1]
		fake.mu.Unlock()
		if !strings.Contains(h, "/"+c.region+"/kms/aws4_request") {
			t.Fatalf("%s: signed for the wrong region: %s", c.keyID, h)
		}
	}
}
