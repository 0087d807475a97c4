package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/keyseal/keyseal/shared/client"
)

// reasonWords says what a seal or unseal reason (keyseal.Reason*) means.
var reasonWords = map[string]string{
	"key_disabled":         "the key is disabled in the KMS",
	"key_pending_deletion": "the key is scheduled for deletion in the KMS",
	"access_denied":        "keyseal is denied access to the key (key policy, grant, role or external id)",
	"key_not_found":        "the key does not exist (deleted, or the wrong id)",
	"invalid_ciphertext":   "the stored TMK does not decrypt under this key",
	"unreachable":          "the KMS did not answer (network, outage or throttling)",
	"revoked":              "the active TMK version was revoked",
}

// reasonText is reason in words, with the code.
func reasonText(reason string) string {
	if w, ok := reasonWords[reason]; ok {
		return w + " (" + reason + ")"
	}
	return reason
}

// hint says, in words, what an API error code means for the operator and
// what to do; "" when the API's message says it all.
func hint(e *client.Error) string {
	switch e.Code {
	case "insufficient_user_authentication":
		return "Your sign-in is too old or was made without MFA for this action: re-authenticate with MFA and use the new admin token (against make run's server: keyseal login --dev)."
	case "unauthorized":
		return "The admin token was refused (missing, expired or not valid for this deployment): sign in again (keyseal login --dev against make run's server) or set KEYSEAL_TOKEN."
	case "forbidden":
		return "The token is valid but may not do this: it needs the keyseal:admin role."
	case "step_up_required":
		return "This action needs a step-up token from POST /admin/auth/step-up; the CLI fetches one itself, so the one it sent was refused or already used: run the command again."
	case "not_sealed":
		return "The tenant is not sealed: there is nothing to unseal."
	case "unseal_failed":
		return "Unseal failed: keyseal's live check of the key still fails, so the tenant stays sealed. Fix the key (keyseal health shows the diagnosis and the commands), then run keyseal unseal again."
	case "tenant_sealed":
		return "The tenant is sealed: keyseal status shows why; restore the key's access and run keyseal unseal."
	case "tenant_revoked":
		return "The tenant's active TMK version is revoked: a tmk rotation (keyseal key rotate --type tmk) creates a new one."
	case "tenant_not_found":
		return "This tenant has no key registered: keyseal key register --provider ... registers one."
	case "byok_key_exists":
		return "A key is already registered: keyseal key migrate moves to another one."
	case "waiver_not_acknowledged":
		return "The legal waiver must be acknowledged first: read it with keyseal waiver show, then keyseal waiver ack --by you@example.com."
	case "waiver_reacknowledgment_required":
		return "A new version of the legal waiver was published: read it with keyseal waiver show, then acknowledge it with keyseal waiver ack --by you@example.com."
	case "cannot_access_cmk":
		return "keyseal cannot use that key: grant it access (keyseal key policy prints the policy or grant), then try again."
	case "provider_not_configured":
		return "This deployment does not serve that provider."
	case "store_unavailable":
		if e.RetryAfter != "" {
			return "keyseal's store is unavailable for a moment: retry in " + e.RetryAfter + " s."
		}
		return "keyseal's store is unavailable for a moment: retry shortly."
	case "kms_unavailable":
		return "The tenant's KMS is not answering: keyseal health shows the diagnosis."
	case "already_revoked":
		return "That TMK version is already revoked."
	case "internal":
		return "keyseal failed internally; its log has the cause."
	case "":
		if e.Status == 502 || e.Status == 503 || e.Status == 504 {
			return "The gateway in front of keyseal answered without keyseal's error body: the service may be down or starting."
		}
	}
	return ""
}

// connectionRefused reports a dial that the host refused.
func connectionRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// printError writes err in words to stderr (as JSON with --json).
func (a *app) printError(err error) {
	w := a.env.Stderr
	e, isAPI := errors.AsType[*client.Error](err)
	var words string
	switch {
	case isAPI:
		words = hint(e)
	case connectionRefused(err):
		words = fmt.Sprintf("Cannot reach keyseal at %s: connection refused. Is the server running? Start the local one with `make run` (it listens on %s), or point --url / KEYSEAL_URL at your deployment.",
			a.url, DefaultURL)
	default:
		if ne, ok := errors.AsType[net.Error](err); ok {
			words = fmt.Sprintf("Cannot reach keyseal at %s: %v", a.url, ne)
		}
	}
	if a.json {
		body := map[string]any{"message": err.Error()}
		if isAPI {
			body = map[string]any{"status": e.Status, "error": e.Code, "message": e.Message}
		}
		if words != "" {
			body["hint"] = words
		}
		b, _ := json.Marshal(body)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	switch {
	case isAPI:
		code := e.Code
		if code == "" {
			code = "no error code"
		}
		if r := e.ExtraString("reason"); r != "" {
			code += ", reason " + r
		}
		what := fmt.Sprintf("%s (%s, HTTP %d, %s %s)", strings.TrimSpace(e.Message), code, e.Status, e.Method, e.Path)
		if words == "" {
			fmt.Fprintf(w, "%s %s\n", a.paint(red, "Error:"), what)
			return
		}
		fmt.Fprintf(w, "%s %s\n  API: %s\n", a.paint(red, "Error:"), words, what)
	case words != "":
		fmt.Fprintf(w, "%s %s\n", a.paint(red, "Error:"), words)
	default:
		fmt.Fprintf(w, "%s %v\n", a.paint(red, "Error:"), err)
	}
}

// Colours, used only when stdout is a terminal and NO_COLOR is unset.
const (
	red    = "31"
	green  = "32"
	yellow = "33"
	bold   = "1"
)

func (a *app) paint(color, s string) string {
	if !a.color {
		return s
	}
	return "\x1b[" + color + "m" + s + "\x1b[0m"
}
