package localserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/localserver"
)

// dial opens a raw connection to s. A read that waits longer than the
// deadline fails the test: the server was meant to act first.
func dial(t *testing.T, s *localserver.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDevRefusesRemoteAddr: dev mode does not listen beyond loopback
// unless told to, and says why.
func TestDevRefusesRemoteAddr(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, l, err := localserver.Wire(ctx, func(k string) string { return map[string]string{"KEYSEAL_LOG_LEVEL": "error"}[k] }, localserver.ModeDev, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.10:8080", "example.com:8080"} {
		s, err := localserver.Start(ctx, a, l, localserver.Options{Addr: addr, DataDir: dir})
		if err == nil {
			s.Close()
			t.Fatalf("Start(%q) listened", addr)
		}
		for _, says := range []string{"loopback", "/dev/admin-token", "without authentication", "KEYSEAL_DEV_ALLOW_REMOTE=1"} {
			if !strings.Contains(err.Error(), says) {
				t.Fatalf("Start(%q): %v; want it to say %q", addr, err, says)
			}
		}
	}
	if _, err := os.Stat(dir + "/dev-credentials.json"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start wrote dev-credentials.json: %v", err)
	}
	for env, want := range map[string]bool{"": false, "0": false, "1": true} {
		got, err := localserver.AllowRemote(func(string) string { return env })
		if err != nil || got != want {
			t.Fatalf("AllowRemote(%q) = %v, %v; want %v", env, got, err, want)
		}
	}
	if _, err := localserver.AllowRemote(func(string) string { return "yes" }); err == nil {
		t.Fatal(`KEYSEAL_DEV_ALLOW_REMOTE="yes" was accepted`)
	}
}

// TestOversizedHeadersGetJSON431: a request with more than 1 MiB of
// headers gets keyseal's JSON 431, both just over the limit (the handler
// refuses it) and far over it (net/http refuses it before any handler).
func TestOversizedHeadersGetJSON431(t *testing.T) {
	s := startLimited(t, localserver.Options{})
	for name, size := range map[string]int{"just over": localserver.MaxHeaderBytes + 100, "far over": 2 * localserver.MaxHeaderBytes} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, s)
			go func() { // the server may answer and close before all is sent
				io.WriteString(c, "GET /health HTTP/1.1\r\nHost: keyseal\r\nX-Big: "+strings.Repeat("a", size)+"\r\n\r\n")
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("Content-Type") != "application/json" ||
				json.Unmarshal(raw, &body) != nil || body["error"] != "invalid_request" || !strings.Contains(body["message"], "headers") {
				t.Fatalf("%d %q %s; want keyseal's JSON 431", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
		})
	}
	// Under the limit is served.
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/health", nil)
	req.Header.Set("X-Big", strings.Repeat("a", localserver.MaxHeaderBytes/2))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("512 KiB of headers: %d", resp.StatusCode)
	}
}

// TestMalformedRequestGetsJSON: net/http's own 400 for a malformed request
// line is keyseal's JSON too.
func TestMalformedRequestGetsJSON(t *testing.T) {
	s := startLimited(t, localserver.Options{})
	c := dial(t, s)
	io.WriteString(c, "GET /health HTTP/1.1\r\nHost: keyseal\r\nBad Header Line\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(raw) {
		t.Fatalf("%d %q %s; want a JSON 400", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
}

// TestTricklingBodyIsCut: a client that sends its headers and then trickles
// (here: stops sending) its body is answered and disconnected by the read
// timeout instead of holding the connection.
func TestTricklingBodyIsCut(t *testing.T) {
	s := startLimited(t, localserver.Options{ReadTimeout: 300 * time.Millisecond})
	c := dial(t, s)
	if _, err := io.WriteString(c, "POST /agent/v1/session HTTP/1.1\r\nHost: keyseal\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("the server still holds a connection whose body stopped arriving")
	}
	if len(raw) > 0 && !strings.Contains(string(raw), "application/json") {
		t.Fatalf("answer to a cut-off body is not keyseal's JSON: %q", raw)
	}
}

// TestIdleConnectionIsClosed: a keep-alive connection that carries no
// further request is closed by the idle timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	s := startLimited(t, localserver.Options{IdleTimeout: 300 * time.Millisecond})
	c := dial(t, s)
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: keyseal\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request: %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	_, err = br.ReadByte()
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("the server keeps an idle connection open")
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the idle timeout: %v, want EOF", err)
	}
}

// startLimited starts dev mode in a fresh dir with opt's limits.
func startLimited(t *testing.T, opt localserver.Options) *localserver.Server {
	t.Helper()
	s, _ := startServer(t, t.TempDir(), nil, opt)
	return s
}
