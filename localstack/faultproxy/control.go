package faultproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ControlPath is where the proxy takes rule changes over HTTP:
//
//	POST   {"match": "<key id or *>", "fault": "deny|drop|error|", "delay": "2s"}
//	DELETE (clears every rule)
//
// A POST with "fault" calls Set (an empty fault is Pass), one with "delay"
// calls SetDelay ("0s" removes a delay); it needs at least one of them. KMS
// has no such path, so it never shadows a proxied request.
const ControlPath = "/_faultproxy/rules"

// controlRule is the body of a POST to ControlPath. Fault is a pointer so
// that an absent field (leave the fault alone) differs from "" (Pass).
type controlRule struct {
	Match string  `json:"match"`
	Fault *Fault  `json:"fault"`
	Delay *string `json:"delay"`
}

func (p *Proxy) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodDelete:
		p.Clear()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		var rule controlRule
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rule); err != nil {
			controlError(w, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
			return
		}
		if rule.Match == "" {
			controlError(w, http.StatusBadRequest, `"match" is required (a key ID, ARN or "*")`)
			return
		}
		if rule.Fault == nil && rule.Delay == nil {
			controlError(w, http.StatusBadRequest, `give "fault", "delay" or both`)
			return
		}
		if rule.Fault != nil && !rule.Fault.Valid() {
			controlError(w, http.StatusBadRequest, fmt.Sprintf(`unknown fault %q (want "deny", "drop", "error" or "")`, string(*rule.Fault)))
			return
		}
		var delay time.Duration
		if rule.Delay != nil {
			var err error
			if delay, err = time.ParseDuration(*rule.Delay); err != nil {
				controlError(w, http.StatusBadRequest, fmt.Sprintf("delay: %v", err))
				return
			}
		}
		// Validate everything before applying anything, so a rejected
		// request changes no rule.
		if rule.Fault != nil {
			p.Set(rule.Match, *rule.Fault)
		}
		if rule.Delay != nil {
			p.SetDelay(rule.Match, delay)
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "POST, DELETE")
		controlError(w, http.StatusMethodNotAllowed, "use POST to set a rule or DELETE to clear them")
	}
}

func controlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
