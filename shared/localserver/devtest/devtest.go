// Package devtest starts the local server in dev mode (what `make run`
// serves) inside a test, on a loopback port, for the tests of the client,
// the CLI and the console.
package devtest

import (
	"context"
	"testing"

	"github.com/keyseal/keyseal/shared/localserver"
)

// Start runs dev mode in process until the test ends. By default the
// poller is parked (an hour) and push sealing is off, so a test seals by
// its own sweeps; env overrides any variable (e.g. KEYSEAL_DEV_PUSH=1).
func Start(t testing.TB, env map[string]string) *localserver.Server {
	t.Helper()
	vars := map[string]string{"KEYSEAL_LOG_LEVEL": "error", "KEYSEAL_POLL_INTERVAL": "1h", "KEYSEAL_DEV_PUSH": "0"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	a, l, err := localserver.Wire(ctx, func(k string) string { return vars[k] }, localserver.ModeDev, dir)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s, err := localserver.Start(ctx, a, l, localserver.Options{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.Close()
		a.Close()
	})
	return s
}
