package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/cli"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/localserver/devtest"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads (audit --follow).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs the CLI in process against one server, with its own config
// file and environment.
type harness struct {
	t        *testing.T
	s        *localserver.Server
	env      map[string]string
	terminal bool
	stdin    string
	secrets  []string // must never appear in any output
}

func newHarness(t *testing.T, s *localserver.Server) *harness {
	dir := t.TempDir()
	return &harness{t: t, s: s, env: map[string]string{"KEYSEAL_CONFIG": filepath.Join(dir, "keyseal", "config.json"),
		"KEYSEAL_URL": s.URL}}
}

type outcome struct {
	code           int
	stdout, stderr string
}

func (h *harness) runCtx(ctx context.Context, stdout io.Writer, args ...string) outcome {
	h.t.Helper()
	var errb syncBuffer
	code := cli.Run(ctx, args, cli.Env{Stdout: stdout, Stderr: &errb, Stdin: strings.NewReader(h.stdin), Getenv: func(k string) string { return h.env[k] },
		Terminal: func(io.Writer) bool { return h.terminal }})
	o := outcome{code: code, stderr: errb.String()}
	if sb, ok := stdout.(*syncBuffer); ok {
		o.stdout = sb.String()
	}
	for _, sec := range h.secrets {
		if sec != "" && (strings.Contains(o.stdout, sec) || strings.Contains(o.stderr, sec)) {
			h.t.Fatalf("keyseal %s printed a secret", strings.Join(args, " "))
		}
	}
	return o
}

func (h *harness) run(args ...string) outcome {
	h.t.Helper()
	return h.runCtx(context.Background(), &syncBuffer{}, args...)
}

func (o outcome) want(t *testing.T, code int, says ...string) outcome {
	t.Helper()
	all := o.stdout + o.stderr
	if o.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", o.code, code, o.stdout, o.stderr)
	}
	for _, s := range says {
		if !strings.Contains(all, s) {
			t.Fatalf("output lacks %q\nstdout:\n%s\nstderr:\n%s", s, o.stdout, o.stderr)
		}
	}
	return o
}

func (h *harness) sweep() {
	h.t.Helper()
	if _, err := h.s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) keyState(state string) {
	h.t.Helper()
	o := h.rawDev("/dev/kms/keys/"+h.s.Credentials.KMSKeyID+"/state", `{"state":"`+state+`"}`)
	if o != 200 {
		h.t.Fatalf("dev key state %s: %d", state, o)
	}
}

// rawDev posts to a dev route (what the tests do as the KMS's owner, not
// as the CLI).
func (h *harness) rawDev(path, body string) int {
	resp, err := httpPost(h.s.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

var ansi = regexp.MustCompile("\x1b\\[")

// login logs the harness in with login --dev and returns the stored token.
func (h *harness) login() string {
	h.t.Helper()
	o := h.run("login", "--dev").want(h.t, 0, "Logged in to "+h.s.URL)
	b, err := os.ReadFile(h.env["KEYSEAL_CONFIG"])
	if err != nil {
		h.t.Fatal(err)
	}
	var cfg cli.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		h.t.Fatal(err)
	}
	tok := cfg.Profiles["default"].Token
	if tok == "" || cfg.Profiles["default"].URL != h.s.URL {
		h.t.Fatalf("profile after login: %s", b)
	}
	if strings.Contains(o.stdout+o.stderr, tok) {
		h.t.Fatal("login printed the admin token")
	}
	h.secrets = append(h.secrets, tok)
	return tok
}

func TestLoginWritesAPrivateProfile(t *testing.T) {
	h := newHarness(t, devtest.Start(t, nil))
	h.login()
	fi, err := os.Stat(h.env["KEYSEAL_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(h.env["KEYSEAL_CONFIG"])); di.Mode().Perm() != 0o700 {
		t.Fatalf("config folder mode %v, want 0700", di.Mode().Perm())
	}
	// A second profile does not disturb the first; --profile selects it.
	h.run("--profile", "other", "login", "--dev", "--tenant", "acme", "--subject", "bob").want(t, 0, `profile "other"`)
	var v api.TenantView
	o := h.run("--profile", "other", "status", "--json")
	if err := json.Unmarshal([]byte(o.stdout), &v); err == nil && v.TenantID == "demo" {
		t.Fatalf("--profile other answered as demo: %s", o.stdout)
	}
	h.run("status").want(t, 0, "demo")
	// A pasted token (stdin), in a profile of its own.
	h.stdin = h.s.Credentials.AdminToken + "\n"
	h.secrets = append(h.secrets, h.s.Credentials.AdminToken)
	h.run("--profile", "pasted", "login", "--token-stdin").want(t, 0, `profile "pasted"`)
	h.run("--profile", "pasted", "status").want(t, 0, "demo")
	h.stdin = "two tokens"
	h.run("--profile", "pasted", "login", "--token-stdin").want(t, 1, "stdin must hold one token")
	h.stdin = ""
	h.run("login").want(t, 1, "exactly one of --dev and --token-stdin")
	// The env wins over the profile.
	h.env["KEYSEAL_TOKEN"] = "not-a-token"
	h.run("status").want(t, 1, "admin token was refused", "unauthorized", "HTTP 401")
}

func TestStatusSealedAndUnseal(t *testing.T) {
	h := newHarness(t, devtest.Start(t, nil))
	h.login()

	o := h.run("status").want(t, 0, "Tenant", "demo", "Status", "active", "Last verify", "Rotation age", "0 days", "Versions", "v1", "active")
	if ansi.MatchString(o.stdout) {
		t.Fatalf("colour when stdout is not a terminal:\n%s", o.stdout)
	}
	var v api.TenantView
	o = h.run("status", "--json").want(t, 0)
	if err := json.Unmarshal([]byte(o.stdout), &v); err != nil || v.Status != "active" || len(v.Versions) != 1 {
		t.Fatalf("status --json: %v %s", err, o.stdout)
	}
	h.terminal = true
	if o := h.run("status"); !strings.Contains(o.stdout, "\x1b[32mactive\x1b[0m") {
		t.Fatalf("no colour on a terminal:\n%q", o.stdout)
	}
	h.env["NO_COLOR"] = "1"
	if o := h.run("status"); ansi.MatchString(o.stdout) {
		t.Fatalf("colour with NO_COLOR:\n%q", o.stdout)
	}
	h.terminal = false

	// Not sealed: the API's 409, in words.
	h.run("unseal").want(t, 1, "not sealed: there is nothing to unseal", "not_sealed", "HTTP 409")

	// Seal it: status exits 2 and names the reason and the KMS error.
	h.keyState("disabled")
	h.sweep()
	h.run("status").want(t, cli.ExitSealed, "sealed", "Seal reason", "the key is disabled in the KMS (key_disabled)", "Sealed since", "Last KMS error")
	o = h.run("status", "--json").want(t, cli.ExitSealed)
	if err := json.Unmarshal([]byte(o.stdout), &v); err != nil || v.Status != "sealed" {
		t.Fatalf("sealed status --json: %v %s", err, o.stdout)
	}
	h.run("health").want(t, 0, "Health", "Latency", "Key state", "disabled")

	// The key still fails: the API's 502 with its reason, in words.
	h.run("unseal").want(t, 1, "Unseal failed", "unseal_failed", "HTTP 502")
	o = h.run("unseal", "--json").want(t, 1)
	var e map[string]any
	if err := json.Unmarshal([]byte(o.stderr), &e); err != nil || e["error"] != "unseal_failed" || e["status"] != float64(502) {
		t.Fatalf("unseal --json error: %v %s", err, o.stderr)
	}

	h.keyState("enabled")
	h.run("unseal").want(t, 0, "Unsealed")
	h.run("status").want(t, 0, "active")

	// The audit filter: only the unseal.
	o = h.run("audit", "--action", "byok.kms.unseal").want(t, 0, "byok.kms.unseal", "actor=")
	for _, line := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
		if !strings.Contains(line, "byok.kms.unseal") {
			t.Fatalf("audit --action byok.kms.unseal printed %q", line)
		}
	}
	var page audit.Page
	o = h.run("audit", "--json", "--action", "byok.kms.seal").want(t, 0)
	if err := json.Unmarshal([]byte(o.stdout), &page); err != nil || len(page.Entries) == 0 {
		t.Fatalf("audit --json: %v %s", err, o.stdout)
	}
	for _, en := range page.Entries {
		if en.Action != "byok.kms.seal" {
			t.Fatalf("audit --action byok.kms.seal listed %s", en.Action)
		}
	}
	h.run("audit", "--limit", "1").want(t, 0, "older entries: keyseal audit --cursor")
	h.run("audit", "--limit", "0x").want(t, 1, "invalid argument")
	h.run("audit", "--limit", "1000").want(t, 1, "invalid_request", "HTTP 400")
	h.run("audit", "verify").want(t, 0, "Audit chain valid")
	o = h.run("audit", "checkpoint", "--json").want(t, 0)
	var cp audit.Signed
	if err := json.Unmarshal([]byte(o.stdout), &cp); err != nil || cp.Checkpoint == "" {
		t.Fatalf("checkpoint --json: %v %s", err, o.stdout)
	}
	h.run("audit", "verify", "--checkpoint", cp.Checkpoint).want(t, 0, "Audit chain valid", "extending the checkpoint")
}

// TestAuditFollow: entries written after --follow starts are printed as
// they come.
func TestAuditFollow(t *testing.T) {
	h := newHarness(t, devtest.Start(t, nil))
	h.login()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan outcome, 1)
	go func() {
		done <- h.runCtx(ctx, out, "audit", "--follow", "--interval", "100ms", "--action", "agent.create")
	}()
	h.run("agents", "create", "follower").want(t, 0, "Created agent")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "agent.create") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("audit --follow never printed the new entry:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if o := <-done; o.code != 0 {
		t.Fatalf("audit --follow ended with %d: %s", o.code, o.stderr)
	}
}

func TestErrorsInWords(t *testing.T) {
	s := devtest.Start(t, nil)
	h := newHarness(t, s)

	h.run("status").want(t, 1, "no admin token", "keyseal login --dev")

	// A sign-in without a recent MFA: step-up is refused by the API, and
	// the CLI says to re-authenticate.
	old, err := s.Local.Issuer.Mint(devissuer.Claims{Subject: "dev-admin", TenantID: "demo", TTL: time.Hour,
		AuthTime: time.Now().Add(-2 * time.Hour), ACR: "mfa", AMR: []string{"pwd", "mfa"}, Roles: []string{"keyseal:admin"}})
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = append(h.secrets, old)
	h.env["KEYSEAL_TOKEN"] = old
	h.run("unseal").want(t, 1, "re-authenticate with MFA", "insufficient_user_authentication", "HTTP 401")
	h.run("key", "revoke", "1", "--confirm", "demo").want(t, 1, "re-authenticate with MFA")
	delete(h.env, "KEYSEAL_TOKEN")

	h.login()
	h.run("key", "rotate", "--type", "sideways").want(t, 1, "invalid_request", "HTTP 400", "rotation_type")
	h.run("key", "rotate").want(t, 1, "--type is required")
	h.run("key", "revoke", "1").want(t, 1, "--confirm TENANT_ID is required")
	h.run("key", "revoke", "1", "--confirm", "someone-else").want(t, 1, "confirm must be your tenant id", "invalid_request")
	h.run("key", "register", "--provider", "local", "key_id").want(t, 1, "must be name=value")
	h.run("key", "register", "--provider", "local", "key_id=x").want(t, 1, "byok_key_exists", "keyseal key migrate")
	h.run("agents", "revoke", "ag_nope").want(t, 1, "not_found", "HTTP 404")
	h.run("webhooks", "create", "http://example.com/hook", "--event", "tenant.kms.sealed").want(t, 1, "invalid_request", "https")
	h.run("nonsense").want(t, 1, "unknown command")

	// Nothing listens: the URL and how to start the server.
	h.env["KEYSEAL_URL"] = "http://127.0.0.1:1"
	h.run("status").want(t, 1, "Cannot reach keyseal at http://127.0.0.1:1: connection refused", "make run")
	h.run("--url", "localhost:8080", "status").want(t, 1, "--url")
}

func TestAgentsWebhooksWaiverKeys(t *testing.T) {
	h := newHarness(t, devtest.Start(t, nil))
	h.login()

	o := h.run("agents", "create", "worker", "--json").want(t, 0)
	var ag struct {
		ID  string `json:"agent_id"`
		Key string `json:"agent_key"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &ag); err != nil || ag.Key == "" {
		t.Fatalf("agents create --json: %v %s", err, o.stdout)
	}
	h.run("agents", "list").want(t, 0, ag.ID, "worker", "active")
	h.run("agents", "revoke", ag.ID).want(t, 0, "Revoked", ag.ID)
	h.run("agents", "list").want(t, 0, "revoked")

	o = h.run("webhooks", "create", "http://127.0.0.1:9/hook", "--event", "tenant.kms.sealed", "--json").want(t, 0)
	var wh subscription.Created
	if err := json.Unmarshal([]byte(o.stdout), &wh); err != nil || wh.ID == "" || wh.Secret == "" {
		t.Fatalf("webhooks create --json: %v %s", err, o.stdout)
	}
	h.secrets = append(h.secrets, wh.Secret) // shown once, at creation; never again
	h.run("webhooks", "list").want(t, 0, wh.ID, "tenant.kms.sealed", "enabled")
	h.run("webhooks", "test", wh.ID).want(t, 0, "Queued test event")
	h.run("webhooks", "deliveries", wh.ID).want(t, 0)
	o = h.run("webhooks", "rotate-secret", wh.ID, "--json").want(t, 0)
	var rot subscription.Rotated
	if err := json.Unmarshal([]byte(o.stdout), &rot); err != nil || rot.Secret == "" || rot.Secret == wh.Secret {
		t.Fatalf("rotate-secret --json: %v %s", err, o.stdout)
	}
	h.secrets = append(h.secrets, rot.Secret)
	h.run("webhooks", "delete", wh.ID).want(t, 0, "Deleted webhook "+wh.ID)
	h.run("webhooks", "list").want(t, 0, "No webhooks")

	h.run("waiver", "show").want(t, 0, "Legal waiver", "sha256")
	h.run("waiver", "ack", "--by", "legal@example.com").want(t, 0, "Acknowledged", "legal@example.com")
	h.run("waiver", "show").want(t, 0, "Acknowledged by legal@example.com")

	o = h.run("key", "policy").want(t, 0)
	var pol map[string]any
	if err := json.Unmarshal([]byte(o.stdout), &pol); err != nil {
		t.Fatalf("key policy is not JSON: %v %s", err, o.stdout)
	}
	h.run("key", "forwarding").want(t, 0, "AWS::Events::Rule", "AWS::IAM::Role")
	h.run("key", "rotate", "--type", "tmk", "--reason", "test").want(t, 0, "Rotated", "active version v2")
	h.run("status").want(t, 0, "v1", "retired", "v2")
	h.run("key", "revoke", "v1", "--confirm", "demo").want(t, 0, "Revoked: v1", "active")
	h.run("health").want(t, 0, "healthy")
	h.run("health", "--service").want(t, 0, "Service ok")
}

// TestHelpEverywhere: every command has --help with examples.
func TestHelpEverywhere(t *testing.T) {
	h := &harness{t: t, env: map[string]string{"KEYSEAL_CONFIG": filepath.Join(t.TempDir(), "c.json")}}
	for _, c := range [][]string{{}, {"key"}, {"waiver"}, {"agents"}, {"webhooks"}, {"login"}, {"status"}, {"unseal"}, {"health"},
		{"key", "register"}, {"key", "migrate"}, {"key", "rotate"}, {"key", "revoke"}, {"key", "policy"}, {"key", "forwarding"}, {"key", "deregister"},
		{"waiver", "show"}, {"waiver", "ack"}, {"agents", "create"}, {"agents", "list"}, {"agents", "revoke"},
		{"audit"}, {"audit", "verify"}, {"audit", "checkpoint"},
		{"webhooks", "create"}, {"webhooks", "list"}, {"webhooks", "delete"}, {"webhooks", "rotate-secret"}, {"webhooks", "test"}, {"webhooks", "deliveries"}} {
		h.run(append(c, "--help")...).want(t, 0, "Usage:", "Examples:", "keyseal "+strings.Join(c, " "))
	}
}
