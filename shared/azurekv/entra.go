package azurekv

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyseal/keyseal/shared/internal/lazyre"

	"golang.org/x/oauth2"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Entra (AADSTS) error codes keyseal reads on a refused token request.
const (
	// AADSTSInvalidSecret and AADSTSExpiredSecret: Entra refused
	// keyseal's own client secret. The operator's to fix (rotate it in
	// Secrets Manager); never the customer's kill switch.
	AADSTSInvalidSecret = 7000215
	AADSTSExpiredSecret = 7000222
	// AADSTSAppNotFound, AADSTSTenantNotFound, AADSTSNotInTenant and
	// AADSTSNoConsent: keyseal's app is absent from, or not consented
	// in, the customer's tenant — the customer removed it, which is the
	// customer's kill switch.
	AADSTSAppNotFound    = 700016
	AADSTSTenantNotFound = 90002
	AADSTSNotInTenant    = 90072
	AADSTSNoConsent      = 65001
)

var (
	ownSecretRejected = []int{AADSTSInvalidSecret, AADSTSExpiredSecret}
	appRemoved        = []int{AADSTSAppNotFound, AADSTSTenantNotFound, AADSTSNotInTenant, AADSTSNoConsent}
	aadstsInText      = lazyre.New(`AADSTS(\d+)`)
)

// entraError is the token endpoint's OAuth error body.
type entraError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

// entraRefusal returns the AADSTS code and description of a token request
// Entra refused, ok false when err holds no *oauth2.RetrieveError (the
// token endpoint's answer).
func entraRefusal(err error) (code int, description string, ok bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return 0, "", false
	}
	var body entraError
	_ = json.Unmarshal(re.Body, &body) // not JSON: only the text below is left
	if len(body.Codes) > 0 {
		return body.Codes[0], firstLine(body.Description), true
	}
	text := body.Description
	if text == "" {
		text = re.Error()
	}
	if m := aadstsInText.FindStringSubmatch(text); m != nil {
		fmt.Sscan(m[1], &code)
	}
	return code, firstLine(body.Description), true
}

// IsOwnSecretRejected reports whether err is Entra refusing keyseal's own
// client secret (AADSTS7000215 invalid, AADSTS7000222 expired).
func IsOwnSecretRejected(err error) bool {
	code, _, ok := entraRefusal(err)
	return ok && slices.Contains(ownSecretRejected, code)
}

// classifyEntra classifies a refused token request:
//   - keyseal's own secret refused: transient, CodeOwnCredentialsRejected,
//     the message naming the AADSTS code and the operator's fix;
//   - keyseal's app removed from, or never consented in, the customer's
//     tenant: terminal access_denied (the customer's kill switch);
//   - anything else (Entra down, a throttled token request): transient,
//     Code "AADSTS<n>" when Entra named one.
func classifyEntra(err error) (*keyseal.KMSError, bool) {
	code, desc, ok := entraRefusal(err)
	if !ok {
		return nil, false
	}
	name := "EntraTokenRefused"
	if code != 0 {
		name = fmt.Sprintf("AADSTS%d", code)
	}
	switch {
	case slices.Contains(ownSecretRejected, code):
		return OwnSecretRejected(code, desc, "the operator must rotate keyseal's client secret in Secrets Manager"), true
	case slices.Contains(appRemoved, code):
		return &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonAccessDenied, Code: name,
			Err: fmt.Errorf("azure-kv: Entra refused keyseal's app in the key's tenant (%s): %s", name, desc)}, true
	}
	return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: name,
		Err: fmt.Errorf("azure-kv: Entra token request failed (%s): %s", name, desc)}, true
}

// OwnSecretRejected is the transient error of Entra refusing keyseal's own
// client secret; fix says what the operator must do.
func OwnSecretRejected(code int, description, fix string) *keyseal.KMSError {
	return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: keyseal.CodeOwnCredentialsRejected,
		Err: fmt.Errorf("azure-kv: Entra refused keyseal's own client secret (AADSTS%d: %s): %s", code, description, fix)}
}

// firstLine is the first line of an Entra description without its
// leading "AADSTSnnnn: " (the code is reported on its own).
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\r\n")
	s, _, _ = strings.Cut(s, "\n")
	if m := aadstsInText.FindStringIndex(s); m != nil && m[0] == 0 {
		s = strings.TrimPrefix(s[m[1]:], ": ")
	}
	return s
}
