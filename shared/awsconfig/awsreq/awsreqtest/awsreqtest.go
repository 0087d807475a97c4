// Package awsreqtest checks, on a fake service's side, the requests
// package awsreq signs: SigV4Error recomputes their signature from the
// request as received, independently of the SDK's signer.
package awsreqtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Key is the access key pair a fake service checks signatures with.
type Key struct {
	// AccessKeyID is the credential scope's key id.
	AccessKeyID string
	// SecretAccessKey signs.
	SecretAccessKey string
}

// SigV4Error recomputes r's Signature Version 4 signature from the
// request as received (the AWS documentation's algorithm: canonical
// request with the path URI-encoded once more, string to sign, HMAC key
// chain) for key, region and service (the signing name), and says why it
// does not match, or nil. The host, X-Amz-Date, the session token when
// sent, and each of mustSign (lower-case header names) must be signed.
func SigV4Error(r *http.Request, body []byte, key Key, region, service string, mustSign ...string) error {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("authorization %q is not SigV4", r.Header.Get("Authorization"))
	}
	fields := map[string]string{}
	for _, kv := range strings.Split(auth, ", ") {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[0] != key.AccessKeyID || cred[2] != region || cred[3] != service || cred[4] != "aws4_request" {
		return fmt.Errorf("credential scope %q, want %s/DATE/%s/%s/aws4_request", fields["Credential"], key.AccessKeyID, region, service)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(amzDate, cred[1]) {
		return fmt.Errorf("X-Amz-Date %q is not of the scope's date %s", amzDate, cred[1])
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, must := range append([]string{"host", "x-amz-date"}, mustSign...) {
		if !slices.Contains(signed, must) {
			return fmt.Errorf("signed headers %v lack %s", signed, must)
		}
	}
	if r.Header.Get("X-Amz-Security-Token") != "" && !slices.Contains(signed, "x-amz-security-token") {
		return fmt.Errorf("signed headers %v lack the session token", signed)
	}
	var canonHeaders strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.TrimSpace(v))
	}
	segments := strings.Split(r.URL.EscapedPath(), "/")
	for i, s := range segments {
		segments[i] = strings.ReplaceAll(s, "%", "%25") // every other byte is unreserved once escaped
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	canonical := strings.Join([]string{r.Method, strings.Join(segments, "/"), r.URL.RawQuery, canonHeaders.String(),
		fields["SignedHeaders"], sum(body)}, "\n")
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", amzDate, strings.Join(cred[1:], "/"), sum([]byte(canonical))}, "\n")
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+key.SecretAccessKey), cred[1]), region), service), "aws4_request")
	if want := hex.EncodeToString(mac(k, toSign)); fields["Signature"] != want {
		return fmt.Errorf("signature %s, want %s over\n%s", fields["Signature"], want, canonical)
	}
	return nil
}
