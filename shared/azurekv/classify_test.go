package azurekv_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/entrafake"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// responseError builds the error azkeys returns for an answer, through the
// SDK's own runtime.NewResponseError.
func responseError(status int, header http.Header, body string) error {
	if header == nil {
		header = http.Header{}
	}
	req, _ := http.NewRequest(http.MethodPost, "https://acme.vault.azure.net/keys/k/v/unwrapkey", nil)
	return runtime.NewResponseError(&http.Response{
		StatusCode: status, Status: http.StatusText(status), Header: header, Request: req,
		Body: io.NopCloser(strings.NewReader(body)),
	})
}

// Key Vault's bodies, as shared/TESTING.md records them.
const (
	disabledBody = `{"error":{"code":"Forbidden","message":"Operation unwrapKey is not allowed on a disabled key.","innererror":{"code":"KeyDisabled"}}}`
	rbacBody     = `{"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=1;oid=2\r\nAction: 'Microsoft.KeyVault/vaults/keys/unwrap/action'\r\nResource: '/keys/k'\r\nAssignment: (not found)\r\n","innererror":{"code":"ForbiddenByRbac"}}}`
	policyBody   = `{"error":{"code":"Forbidden","message":"The user, group or application 'appid=1;oid=2' does not have keys unwrapKey permission on key vault 'acme;location=westeurope'."}}`
	notFoundBody = `{"error":{"code":"KeyNotFound","message":"A key with (name/id) k was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command."}}`
	unauthBody   = `{"error":{"code":"Unauthorized","message":"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/t1/, found https://sts.windows.net/t2/."}}`
	throttleBody = `{"error":{"code":"Throttled","message":"Request was not allowed because application has exceeded the maximum allowed number of requests."}}`
	badBody      = `{"error":{"code":"BadParameter","message":"Unwrap failed."}}`
	unavailBody  = `{"error":{"code":"ServiceUnavailable","message":"The service is currently unavailable."}}`
)

func TestClassify(t *testing.T) {
	retry := http.Header{"Retry-After": {"12"}}
	cases := []struct {
		name     string
		err      error
		terminal bool
		reason   string
		code     string
		mention  string
	}{
		{"disabled key (innererror KeyDisabled)", responseError(403, nil, disabledBody), true, keyseal.ReasonKeyDisabled, "KeyDisabled", ""},
		{"no RBAC role", responseError(403, nil, rbacBody), true, keyseal.ReasonAccessDenied, "ForbiddenByRbac", ""},
		{"access policy without unwrapKey", responseError(403, nil, policyBody), true, keyseal.ReasonAccessDenied, "Forbidden", ""},
		{"token from the wrong tenant", responseError(401, nil, unauthBody), true, keyseal.ReasonAccessDenied, "Unauthorized", ""},
		{"deleted key", responseError(404, nil, notFoundBody), true, keyseal.ReasonKeyNotFound, "KeyNotFound", ""},
		{"ciphertext Key Vault cannot unwrap", responseError(400, nil, badBody), true, keyseal.ReasonInvalidBlob, "BadParameter", ""},
		{"throttled", responseError(429, retry, throttleBody), false, keyseal.ReasonUnreachable, "Throttled", "Retry-After: 12"},
		{"service unavailable", responseError(503, nil, unavailBody), false, keyseal.ReasonUnreachable, "ServiceUnavailable", ""},
		{"500 without a body", responseError(500, nil, ""), false, keyseal.ReasonUnreachable, "Internal Server Error", ""},
		{"502 from a proxy, HTML", responseError(502, nil, "<html>Bad Gateway</html>"), false, keyseal.ReasonUnreachable, "Bad Gateway", ""},
		{"403 from a firewall, no JSON", responseError(403, nil, "Forbidden"), true, keyseal.ReasonAccessDenied, "Forbidden", ""},
		{"dial refused", fmt.Errorf("POST: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), false, keyseal.ReasonUnreachable, "NetworkError", ""},
		{"deadline", fmt.Errorf("POST: %w", context.DeadlineExceeded), false, keyseal.ReasonUnreachable, "Timeout", ""},
		// Token requests Entra refused, from keyseal's Entra credential
		// against the Entra fake: keyseal's own secret is never a seal; its
		// app gone from the customer's tenant is.
		{"own secret invalid (AADSTS7000215)", entraRefused(t, entrafake.TenantOK, "wrong-secret"), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected, "AADSTS7000215"},
		{"own secret expired (AADSTS7000222)", entraRefused(t, entrafake.TenantOK, "expired-secret"), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected, "AADSTS7000222"},
		{"app removed from the tenant (AADSTS700016)", entraRefused(t, entrafake.TenantAppGone, "good-secret"), true, keyseal.ReasonAccessDenied, "AADSTS700016", "not found in the directory"},
		{"tenant gone (AADSTS90002)", entraRefused(t, entrafake.TenantGone, "good-secret"), true, keyseal.ReasonAccessDenied, "AADSTS90002", "not found"},
		{"consent refused (AADSTS65001)", entraRefused(t, entrafake.TenantNoConsent, "good-secret"), true, keyseal.ReasonAccessDenied, "AADSTS65001", "consented"},
		{"Entra unavailable", entraRefused(t, entrafake.TenantDown, "good-secret"), false, keyseal.ReasonUnreachable, "EntraTokenRefused", ""},
		{"already classified", &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonInvalidBlob, Code: "EncryptionContextMismatch"}, true, keyseal.ReasonInvalidBlob, "EncryptionContextMismatch", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := azurekv.Classify(c.err)
			if got.Terminal != c.terminal || got.Reason != c.reason || got.Code != c.code {
				t.Fatalf("Classify = terminal=%v reason=%s code=%q; want %v %s %q", got.Terminal, got.Reason, got.Code, c.terminal, c.reason, c.code)
			}
			if c.mention != "" && !strings.Contains(got.Error(), c.mention) {
				t.Fatalf("%v does not mention %q", got, c.mention)
			}
		})
	}
}
