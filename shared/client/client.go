// Package client is keyseal's typed Go client: one method per route of
// shared/api's Table (and the local server's dev routes), over real
// net/http, decoding into the API's own exported types. The CLI
// (shared/cli), the integration suite and the console tests use it instead
// of hand-written HTTP.
//
// Every method takes a context and sends one request: the client never
// retries, so a non-idempotent call (a rotation, an agent creation) cannot
// run twice behind the caller's back. An API error comes back as *Error,
// carrying the error body, so callers switch on Error.Code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
)

// maxBody bounds what the client reads of an answer (the API's largest,
// an audit page of MaxPage entries, is far below it).
const maxBody = 8 << 20

// DefaultTimeout bounds one request when the caller's context has no
// deadline and the caller did not pass its own http.Client.
const DefaultTimeout = 60 * time.Second

// Client calls one keyseal deployment as one principal: an admin JWT for
// the admin routes, an agent key for the agent routes (Token is sent as
// the bearer credential; empty sends none). A Client is safe for
// concurrent use; With* return modified copies.
type Client struct {
	base  string
	token string
	http  *http.Client
	agent string
}

// New returns a client of the deployment at baseURL (scheme, host and any
// stage path, e.g. https://api.example.com/prod) calling as token.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("keyseal client: base URL %q must be an http(s) URL with a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("keyseal client: base URL %q must not carry a query or fragment", baseURL)
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: token,
		http: &http.Client{Timeout: DefaultTimeout}, agent: "keyseal-go-client"}, nil
}

// MustNew is New for base URLs known to be valid (tests, a server's own
// URL); it panics otherwise.
func MustNew(baseURL, token string) *Client {
	c, err := New(baseURL, token)
	if err != nil {
		panic(err)
	}
	return c
}

// WithToken returns a copy calling as token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// WithHTTPClient returns a copy sending through h (its Transport,
// Timeout and redirect policy).
func (c *Client) WithHTTPClient(h *http.Client) *Client {
	cp := *c
	cp.http = h
	return &cp
}

// WithUserAgent returns a copy sending ua as its User-Agent.
func (c *Client) WithUserAgent(ua string) *Client {
	cp := *c
	cp.agent = ua
	return &cp
}

// BaseURL is the deployment URL the client calls (without a trailing
// slash).
func (c *Client) BaseURL() string { return c.base }

// Error is a non-2xx answer of the API: its status and the error body.
// Admin routes answer {"error": code, "message": ..., ...extra}; agent
// routes {"error": {"type": code, "message": ...}}: both fill Code and
// Message. A body that is neither (a gateway's own 502, say) leaves Code
// empty and puts a bounded excerpt in Message.
type Error struct {
	Method string
	Path   string // the route path called, without the query
	Status int
	Code   string
	// Message is the API's client-safe message.
	Message string
	// Extra holds the admin body's other members (reason on unseal_failed,
	// required_key_policy on cannot_access_cmk, acr_values and max_age on
	// insufficient_user_authentication).
	Extra map[string]json.RawMessage
	// RetryAfter is the Retry-After header (store_unavailable), and
	// WWWAuthenticate the RFC 9470 challenge of
	// insufficient_user_authentication.
	RetryAfter      string
	WWWAuthenticate string
	// Body is the answer as received (bounded): what a caller reads when
	// the error body has a shape of its own (GET /health's 503).
	Body json.RawMessage
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("keyseal: %s %s: %d %s: %s", e.Method, e.Path, e.Status, code, e.Message)
}

// ExtraString is the string member name of the error body ("" when absent
// or not a string): e.g. "reason" of unseal_failed.
func (e *Error) ExtraString(name string) string {
	var s string
	if raw, ok := e.Extra[name]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// ErrorCode is err's API error code, "" when err is not an *Error.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ""
}

// call is one request: body (nil for none) encoded as JSON, stepUp sent as
// the step-up header when set, the 2xx answer decoded into out (nil
// discards it). path is the route path with its parameters escaped; query
// is appended when non-empty.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, stepUp string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("keyseal: %s %s: encoding the body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("keyseal: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if stepUp != "" {
		req.Header.Set(auth.StepUpHeader, stepUp)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error names the URL (never a header): the connection
		// failure stays visible to errors.Is (syscall.ECONNREFUSED).
		return fmt.Errorf("keyseal: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("keyseal: %s %s: reading the answer: %w", method, path, err)
	}
	if len(raw) > maxBody {
		return fmt.Errorf("keyseal: %s %s: answer larger than %d bytes", method, path, maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(method, path, resp, raw)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("keyseal: %s %s: %d answer is not the expected JSON: %w", method, path, resp.StatusCode, err)
	}
	return nil
}

// decodeError reads an error answer in either body style.
func decodeError(method, path string, resp *http.Response, raw []byte) *Error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode,
		RetryAfter: resp.Header.Get("Retry-After"), WWWAuthenticate: resp.Header.Get("WWW-Authenticate"), Body: raw}
	var body map[string]json.RawMessage
	if json.Unmarshal(raw, &body) == nil {
		var agent struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body["error"], &e.Code) == nil && e.Code != "" {
			_ = json.Unmarshal(body["message"], &e.Message)
			delete(body, "error")
			delete(body, "message")
			if len(body) > 0 {
				e.Extra = body
			}
			return e
		}
		if json.Unmarshal(body["error"], &agent) == nil && agent.Type != "" {
			e.Code, e.Message = agent.Type, agent.Message
			return e
		}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}
