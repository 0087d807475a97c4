package localserver

import (
	"net/http"
	"testing"
)

func TestCheckListenAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:8080": true, "[::1]:8080": true, "localhost:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "keyseal.internal:8080": false, "nonsense": false,
	} {
		if err := checkListenAddr(addr, false); (err == nil) != ok {
			t.Errorf("checkListenAddr(%q) = %v, want allowed %v", addr, err, ok)
		}
		if addr != "nonsense" {
			if err := checkListenAddr(addr, true); err != nil {
				t.Errorf("checkListenAddr(%q, allowRemote) = %v", addr, err)
			}
		}
	}
}

// TestHTTPServerLimits: every timeout is set (a zero one is no limit in
// net/http), and so is the header limit.
func TestHTTPServerLimits(t *testing.T) {
	s := httpServer(http.NotFoundHandler(), Options{})
	if s.ReadHeaderTimeout != ReadHeaderTimeout || s.ReadTimeout != ReadTimeout || s.WriteTimeout != WriteTimeout ||
		s.IdleTimeout != IdleTimeout || s.MaxHeaderBytes != MaxHeaderBytes {
		t.Fatalf("server limits: %+v", s)
	}
}
