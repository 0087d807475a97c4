package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Limits of one delivery attempt.
const (
	// DefaultTimeout bounds one attempt end to end: dial, TLS, the
	// request, the response headers and the bounded body read.
	DefaultTimeout = 15 * time.Second
	// MaxResponseBody is how much of a receiver's response body is read
	// before the connection is closed.
	MaxResponseBody = 64 << 10
	// maxResponseHeader bounds the receiver's response headers.
	maxResponseHeader = 64 << 10
)

// UserAgent is sent with every delivery.
const UserAgent = "keyseal-webhooks/1 (+https://github.com/keyseal/keyseal)"

// Resolver resolves a host name to addresses; *net.Resolver implements it.
// Tests replace it to play a DNS rebinding.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// ClientOptions configure NewClient; the zero value is production's.
type ClientOptions struct {
	// Timeout bounds one attempt; DefaultTimeout when zero.
	Timeout time.Duration
	// Resolver resolves host names; net.DefaultResolver when nil.
	Resolver Resolver
	// RootCAs replaces the system roots (tests trust their httptest
	// server's certificate); verification stays on.
	RootCAs *x509.CertPool
	// RetryScale, in (0, 1], multiplies the delay before each retry (the
	// schedule's and a Retry-After) and the RetryWindow: rehearsals in dev
	// mode set it (KEYSEAL_WEBHOOK_RETRY_SCALE) to watch the whole
	// schedule, to the dead-letter, quickly.
	// Zero or anything outside (0, 1] is 1: production's schedule.
	RetryScale float64
}

// Client posts deliveries under a Policy. Every connection is checked
// after DNS resolution, in the dialer's Control, against the address
// actually being connected to, so a name that resolved publicly when the
// subscription was created and resolves to 127.0.0.1 now is refused.
// It uses no proxy from the environment, follows no redirect and verifies
// TLS. It is safe for concurrent use; attempts share only idle
// connections.
type Client struct {
	policy   Policy
	timeout  time.Duration
	scale    float64
	resolver Resolver
	http     *http.Client
}

// NewClient returns a Client applying p.
func NewClient(p Policy, o ClientOptions) *Client {
	c := &Client{policy: p, timeout: o.Timeout, resolver: o.Resolver, scale: o.RetryScale}
	if !(c.scale > 0 && c.scale <= 1) {
		c.scale = 1
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	t := &http.Transport{
		Proxy:                  nil, // never HTTP(S)_PROXY: the proxy would dial unchecked addresses
		DialContext:            c.dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs},
		TLSHandshakeTimeout:    c.timeout,
		ResponseHeaderTimeout:  c.timeout,
		MaxResponseHeaderBytes: maxResponseHeader,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
	}
	c.http = &http.Client{
		Transport: t,
		Timeout:   c.timeout,
		// A 3xx is the attempt's answer (a failure), never followed: the
		// target of a redirect was never checked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// dial resolves host, then connects to its addresses in turn; the
// dialer's Control refuses any address the policy refuses.
func (c *Client) dial(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = c.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no address", host)
	}
	d := net.Dialer{Timeout: c.timeout, Control: c.control(host)}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// control checks the address the socket is about to connect to.
func (c *Client) control(host string) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, err)
		}
		if err := c.policy.AllowedDial(host, ap.Addr()); err != nil {
			return &RefusedError{Host: host, Reason: err.Error()}
		}
		return nil
	}
}

// RefusedError is a connection the policy refused after resolution.
type RefusedError struct {
	Host   string
	Reason string
}

func (e *RefusedError) Error() string {
	return "address refused for " + e.Host + ": " + e.Reason
}

// do sends req with the client's limits and returns the status and the
// Retry-After header, having read at most MaxResponseBody bytes of the
// body and closed it (an unread remainder closes the connection, so a
// receiver streaming without end costs one bounded read).
func (c *Client) do(req *http.Request) (status int, retryAfter string, err error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	// The status already came: a body that breaks off does not change the
	// receiver's answer, so the read's error is of no interest.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// statusText names a status for a DeliveryAttempt's error.
func statusText(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
