// Package faultproxy is a fault-injecting reverse proxy for AWS KMS's JSON
// protocol, placed between keyseal's KMS client and LocalStack.
//
// LocalStack enforces key state (a disabled key gives DisabledException) but
// never IAM or key policies, and it cannot cut the network, yet those are the
// failures a customer's key produces most often in production: a revoked
// grant, an edited key policy, a VPC endpoint gone. The proxy rehearses them
// for chosen keys: it answers AccessDeniedException, drops the connection
// without answering, fails with KMSInternalException, or delays the request,
// and forwards everything else unchanged.
//
// Placed in front of DynamoDB Local instead, it applies store rules
// (AddStoreRule, dynamodb.go): throttling, 500s, answers dropped after the
// write, latency, matched by operation and table at a chosen rate.
//
// Besides proxying, it answers POST and DELETE on ControlPath so that rules
// can be changed from outside the process during a manual drill (see
// localstack/cmd/faultproxy).
package faultproxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the proxy does with a request a rule matches.
type Fault string

// The faults. Pass is the zero value, so an unset rule forwards.
const (
	// Pass forwards the request unchanged.
	Pass Fault = ""
	// Deny answers 400 AccessDeniedException, as KMS does when the key
	// policy or a grant no longer lets the caller use the key.
	Deny Fault = "deny"
	// Drop closes the connection without answering: a network partition as
	// the client sees it.
	Drop Fault = "drop"
	// ServerError answers 500 KMSInternalException, a KMS outage.
	ServerError Fault = "error"
)

// Valid reports whether f is one of the Fault constants.
func (f Fault) Valid() bool {
	switch f {
	case Pass, Deny, Drop, ServerError:
		return true
	}
	return false
}

// maxBody bounds the request body the proxy buffers to find the key. KMS
// requests are a few KiB at most (Encrypt takes 4 KiB of plaintext).
const maxBody = 1 << 20

// rule is one Set or SetDelay call.
type rule struct {
	match string
	fault Fault
	delay time.Duration
}

// Proxy forwards KMS requests to an upstream endpoint, applying the faults
// and delays of the rules that match each request's key. It is safe for
// concurrent use; rules may change while requests are in flight.
type Proxy struct {
	upstream  *url.URL
	transport *http.Transport
	forward   *httputil.ReverseProxy
	requests  atomic.Int64
	done      chan struct{} // closed by Close, ends pending delays

	mu     sync.Mutex
	faults []rule // in the order set; the last match wins
	delays []rule
	// store are the DynamoDB rules, in the order added; the first that
	// fires wins. injected counts the faults they applied.
	store    []*storeRule
	injected map[Fault]int
	srv      *http.Server
	closed   bool

	// after is time.After; tests replace it to release delays on demand
	// rather than by the clock.
	after func(time.Duration) <-chan time.Time
}

// New returns a proxy forwarding to upstream, a base URL such as
// http://127.0.0.1:4566. It does not listen until Start.
func New(upstream string) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: upstream %q: %w", upstream, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an http(s) base URL", upstream)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The upstream is a local stand-in: an HTTP(S)_PROXY meant for the
	// internet must not capture it.
	tr.Proxy = nil
	p := &Proxy{upstream: u, transport: tr, done: make(chan struct{}), after: time.After}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the Host the client signed with SigV4, so the request
			// reaches the upstream exactly as the client sent it.
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client has gone; nobody reads an answer
			}
			writeError(w, http.StatusBadGateway, "ServiceUnavailableException",
				fmt.Sprintf("faultproxy: upstream %s unreachable: %v", u.Host, err))
		},
	}
	return p, nil
}

// Start listens on addr, which must be a loopback address such as
// "127.0.0.1:0", and serves in the background until Close. It returns the
// proxy's base URL, to be used as the KMS client's endpoint.
func (p *Proxy) Start(addr string) (baseURL string, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("faultproxy: listen address %q: %w", addr, err)
	}
	if !isLoopback(host) {
		// A fault injector reachable from the network would let anyone
		// who can reach it steer keyseal's view of KMS.
		return "", fmt.Errorf("faultproxy: listen address %q is not a loopback address", addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return "", errors.New("faultproxy: proxy is closed")
	case p.srv != nil:
		return "", errors.New("faultproxy: proxy already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("faultproxy: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	p.srv = srv
	// Serve only returns once Close has closed the server.
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close stops listening, closes every connection (requests waiting out a
// delay end without an answer) and releases upstream connections. It is safe
// to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	srv := p.srv
	p.mu.Unlock()
	close(p.done)
	var err error
	if srv != nil {
		err = srv.Close()
	}
	p.transport.CloseIdleConnections()
	return err
}

// Set applies f to requests whose key (the JSON body field KeyId; for a
// Decrypt without one, the key LocalStack recorded in the ciphertext blob)
// contains match, so a key ID also matches requests naming the key by ARN.
// Match "*" applies to every request, including those without a KeyId; an
// empty match applies to none. The most recently set matching rule wins, so
// Set("*", Deny) then Set(id, Pass) denies every key but id. Setting a match
// again replaces its rule.
//
// Set panics if f is not one of the Fault constants: a misspelt fault would
// otherwise quietly let every request through and the drill prove nothing.
func (p *Proxy) Set(match string, f Fault) {
	if !f.Valid() {
		panic(fmt.Sprintf("faultproxy: unknown fault %q", string(f)))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = upsert(p.faults, rule{match: match, fault: f})
}

// SetDelay makes requests matching match (as in Set) wait d before their
// fault applies or they are forwarded. The wait ends early, without an
// answer, when the client gives up. A d of zero or less removes the delay
// for match, overriding broader rules set before it.
func (p *Proxy) SetDelay(match string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delays = upsert(p.delays, rule{match: match, delay: d})
}

// upsert appends r, dropping an earlier rule with the same match so that the
// list stays as short as the set of distinct matches.
func upsert(rules []rule, r rule) []rule {
	out := rules[:0]
	for _, old := range rules {
		if old.match != r.match {
			out = append(out, old)
		}
	}
	return append(out, r)
}

// Clear removes every rule, the store rules too: all requests are
// forwarded at once again.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.delays, p.store = nil, nil, nil
}

// Requests returns how many requests the proxy has seen, whatever it did
// with them (control requests excluded). Tests use it to prove a client did
// or did not go to KMS, for example that a cached key was served without a
// call.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// lookup returns the fault and delay of the most recent rules matching key.
func (p *Proxy) lookup(key string) (Fault, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, d := Pass, time.Duration(0)
	for i := len(p.faults) - 1; i >= 0; i-- {
		if matches(p.faults[i].match, key) {
			f = p.faults[i].fault
			break
		}
	}
	for i := len(p.delays) - 1; i >= 0; i-- {
		if matches(p.delays[i].match, key) {
			d = p.delays[i].delay
			break
		}
	}
	return f, d
}

func matches(match, key string) bool {
	if match == "*" {
		return true
	}
	return match != "" && key != "" && strings.Contains(key, match)
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == ControlPath {
		p.serveControl(w, r)
		return
	}
	p.requests.Add(1)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
				fmt.Sprintf("faultproxy: request body over %d bytes", maxBody))
		}
		return // otherwise the client went away mid-body
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if op := storeOperation(r); op != "" {
		p.serveStore(w, r, op, body)
		return
	}

	key := requestKey(body)
	fault, delay := p.lookup(key)
	if delay > 0 {
		select {
		case <-p.after(delay):
		case <-r.Context().Done():
			return
		case <-p.done:
			// Returning would send an empty 200; a closed proxy answers
			// nothing.
			drop(w)
			return
		}
	}
	switch fault {
	case Deny:
		resource := key
		if resource == "" {
			resource = "*"
		}
		writeError(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
			"User: arn:aws:iam::000000000000:root is not authorized to perform: kms:%s on resource: %s "+
				"because no key policy or grant allows it (injected by faultproxy)", operation(r), resource))
	case ServerError:
		writeError(w, http.StatusInternalServerError, "KMSInternalException",
			"The request was rejected because an internal exception occurred (injected by faultproxy).")
	case Drop:
		drop(w)
	default:
		p.forward.ServeHTTP(w, r)
	}
}

// requestKey returns the key a KMS request names: its KeyId or, for a
// Decrypt that leaves KeyId out, the key ID LocalStack writes in the first
// 36 bytes of its ciphertext blobs. It returns "" when the body names no key.
func requestKey(body []byte) string {
	var req struct {
		KeyID          string `json:"KeyId"`
		CiphertextBlob []byte `json:"CiphertextBlob"`
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	if req.KeyID != "" {
		return req.KeyID
	}
	if len(req.CiphertextBlob) >= 36 && isUUID(req.CiphertextBlob[:36]) {
		return string(req.CiphertextBlob[:36])
	}
	return ""
}

func isUUID(b []byte) bool {
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// operation is the KMS action of a JSON-protocol request, from its
// X-Amz-Target header ("TrentService.Encrypt").
func operation(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return "Unknown"
}

// writeError answers the way AWS's JSON 1.1 protocol reports an error, which
// the SDKs decode into the error's code and message.
func writeError(w http.ResponseWriter, status int, code, message string) {
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amzn-ErrorType", code)
	h.Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// drop closes the client's connection without writing a byte.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): aborting the handler resets the stream,
		// which the client sees the same way.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}
