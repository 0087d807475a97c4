package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// statusByCode maps each application error code to its one HTTP status.
var statusByCode = map[string]int{
	keyseal.EINVALID:        400,
	keyseal.EKEYARN:         400,
	keyseal.EKEYURL:         400,
	keyseal.EKEYNAME:        400,
	keyseal.EUNAUTHORIZED:   401,
	keyseal.ESTEPUP:         401,
	keyseal.EINSUFFICIENT:   401,
	keyseal.EFORBIDDEN:      403,
	keyseal.ENOTFOUND:       404,
	keyseal.ETENANT:         404,
	keyseal.EMETHOD:         405,
	keyseal.ECONFLICT:       409,
	keyseal.ENOTSEALED:      409,
	keyseal.EKEYEXISTS:      409,
	keyseal.EREVOKED:        409,
	keyseal.EREVOKEDVERSION: 409,
	keyseal.EWAIVER:         409,
	keyseal.EWAIVERREACK:    409,
	keyseal.ENOTFORWARDABLE: 409,
	keyseal.ECMKACCESS:      422,
	keyseal.EPROVIDER:       422,
	keyseal.EINTERNAL:       500,
	keyseal.EUNSEALFAILED:   502,
	keyseal.ESEALED:         503,
	keyseal.EKMSUNAVAILABLE: 503,
	keyseal.EUNAVAILABLE:    503,
}

// retryAfterSeconds is the Retry-After of a store_unavailable answer: the
// store's SDK has already retried with backoff, so a client waits a moment
// longer than one of those rounds before it tries again.
const retryAfterSeconds = "2"

// StatusOf maps an error code to its HTTP status; 500 for a code it does
// not know.
func StatusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return 500
}

// errorResponse renders err in the route's style. 5xx bodies of internal
// errors say only "internal error" (502 and 503 carry their message); the
// real error is logged once here.
func (rt *Router) errorResponse(ctx context.Context, ev events.APIGatewayProxyRequest, style Style, err error, headers map[string]string) Response {
	code := keyseal.ErrorCode(err)
	status := StatusOf(code)
	msg := keyseal.ErrorMessage(err)
	switch code {
	case keyseal.EINTERNAL:
		rt.log.ErrorContext(ctx, "internal error", "method", ev.HTTPMethod, "path", ev.Path, "err", err)
	case keyseal.EUNAVAILABLE:
		rt.log.WarnContext(ctx, "store unavailable", "method", ev.HTTPMethod, "path", ev.Path, "err", err)
	}
	e, _ := errors.AsType[*keyseal.Error](err)
	if headers == nil {
		headers = map[string]string{}
	}
	if code == keyseal.EINSUFFICIENT && e != nil {
		headers["WWW-Authenticate"] = challenge(e)
	}
	if code == keyseal.EUNAVAILABLE {
		headers["Retry-After"] = retryAfterSeconds
	}
	if style == StyleAgent {
		return Response{Status: status, Headers: headers, Body: map[string]any{"error": map[string]string{"type": code, "message": msg}}}
	}
	body := map[string]any{}
	if e != nil {
		for k, v := range e.Extra {
			body[k] = v
		}
	}
	body["error"] = code
	body["message"] = msg
	return Response{Status: status, Headers: headers, Body: body}
}

// challenge is the RFC 9470 WWW-Authenticate value of an EINSUFFICIENT
// error: what a fresh sign-in must show (acr_values, max_age).
func challenge(e *keyseal.Error) string {
	return fmt.Sprintf(`Bearer error="insufficient_user_authentication", error_description=%s, acr_values=%s, max_age=%v`,
		quote("A fresh multi-factor authentication is required"), quote(fmt.Sprint(e.Extra[auth.ExtraACRValues])), e.Extra[auth.ExtraMaxAge])
}

// quote renders s as an HTTP quoted-string (RFC 9110 §5.6.4).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// ErrorStatuses returns every error code with its HTTP status (a copy of
// the table): what the OpenAPI documents list.
func ErrorStatuses() map[string]int { return maps.Clone(statusByCode) }
