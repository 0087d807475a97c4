package localserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The local server's limits. net/http enforces none of the timeouts by
// default, so without them a client that trickles a body (or never sends
// one) holds a descriptor and a goroutine for as long as it likes.
const (
	// MaxHeaderBytes bounds a request's header section; a request over it
	// gets keyseal's JSON 431.
	MaxHeaderBytes = 1 << 20
	// ReadHeaderTimeout and ReadTimeout bound how long a request may take
	// to arrive (headers; headers and body). A body is at most 64 KiB, which
	// any real client sends in well under a second.
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	// WriteTimeout bounds a request from its headers to the end of its
	// answer: room for the slowest handler (a registration or a forced
	// unseal: live KMS calls of KEYSEAL_KMS_TIMEOUT each, then the store).
	WriteTimeout = 60 * time.Second
	// IdleTimeout closes keep-alive connections that carry no request.
	IdleTimeout = 60 * time.Second
)

// httpServer is the local server's http.Server: its timeouts (opt's when
// set, for tests) and the header limit.
func httpServer(h http.Handler, opt Options) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: or(opt.ReadHeaderTimeout, ReadHeaderTimeout),
		ReadTimeout:       or(opt.ReadTimeout, ReadTimeout),
		WriteTimeout:      or(opt.WriteTimeout, WriteTimeout),
		IdleTimeout:       or(opt.IdleTimeout, IdleTimeout),
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// checkListenAddr refuses, unless allowRemote, an address that is not a
// loopback one: the local server serves POST /dev/admin-token, which mints
// admin tokens for any tenant without authentication, so anyone who can
// reach it is an admin. Host names other than localhost are refused too
// (they may resolve to anything); Start also checks the address it got.
func checkListenAddr(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return remoteRefused(addr)
}

func remoteRefused(addr string) error {
	return fmt.Errorf("refusing to listen on %q: the local server listens on loopback only (127.0.0.1, ::1 or localhost), "+
		"because POST /dev/admin-token mints admin tokens without authentication and anyone who can reach it is an admin; "+
		"set KEYSEAL_DEV_ALLOW_REMOTE=1 to listen there anyway", addr)
}

// AllowRemote reads KEYSEAL_DEV_ALLOW_REMOTE: "1" allows a non-loopback
// listen address, "" or "0" does not, anything else is an error.
func AllowRemote(getenv func(string) string) (bool, error) {
	switch v := getenv("KEYSEAL_DEV_ALLOW_REMOTE"); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("KEYSEAL_DEV_ALLOW_REMOTE must be 1 or unset, not %q", v)
	}
}

// headersTooLarge reports whether r's header section (request line and
// header lines) is over MaxHeaderBytes. net/http itself refuses only past
// MaxHeaderBytes plus 4 KiB of slack; this closes the gap.
func headersTooLarge(r *http.Request) bool {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n > MaxHeaderBytes
}

// writeJSONError writes keyseal's admin-style error body.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"message":%q}`, code, message)
}

// jsonErrorsListener hands out connections whose net/http error answers are
// keyseal's JSON. net/http answers some requests itself, before any handler
// runs (431 for headers over MaxHeaderBytes, 400 for a malformed request,
// 501 for an unknown transfer encoding), with a text/plain body written
// straight to the connection in one write; there is no hook for them.
type jsonErrorsListener struct{ net.Listener }

func (l jsonErrorsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorsConn{Conn: c}, nil
}

type jsonErrorsConn struct{ net.Conn }

// netHTTPErrorHeaders are the header lines of net/http's own error
// answers. keyseal's handlers always answer application/json, so a write
// carrying them is net/http's.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *jsonErrorsConn) Write(p []byte) (int, error) {
	out, ok := jsonNetHTTPError(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets net/http half-close the connection after an error
// answer, as it does on a bare TCP connection.
func (c *jsonErrorsConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// jsonNetHTTPError turns one of net/http's own error answers into the same
// status with keyseal's JSON error body (which never repeats the request).
func jsonNetHTTPError(p []byte) ([]byte, bool) {
	const prefix = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(prefix)) || !bytes.Contains(p, []byte(netHTTPErrorHeaders)) || len(p) < len(prefix)+3 {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len(prefix) : len(prefix)+3]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	msg := "malformed HTTP request: " + strings.ToLower(http.StatusText(status))
	if status == http.StatusRequestHeaderFieldsTooLarge {
		msg = fmt.Sprintf("request headers are larger than %d bytes", MaxHeaderBytes)
	}
	body := fmt.Sprintf(`{"error":"invalid_request","message":%q}`, msg)
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", status, http.StatusText(status), len(body), body), true
}
