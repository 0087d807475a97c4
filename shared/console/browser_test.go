//go:build integration

package console_test

// Browser tests of the admin console: a real headless Chromium (Debian's
// package, fetched by scripts/chromium.sh) driven with chromedp against a
// dev-mode local server in this process. Screenshots land in
// test-artifacts/console/ (git-ignored); KEYSEAL_CONSOLE_DOCS=1 also
// rewrites the README's screenshot, docs/console-tenant-kms-sealed.png.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keyseal/keyseal/shared/console"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/localserver/devtest"
)

// waitFor bounds each wait for the page; the console refreshes every 3 s,
// so a change the server makes shows within one refresh, well inside it.
const waitFor = 15 * time.Second

// repoRoot is the folder of go.mod above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// chromium is KEYSEAL_CHROMIUM, else the wrapper scripts/chromium.sh
// installs. A missing browser fails the test: the tier must not pass
// without having run it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYSEAL_CHROMIUM"); p != "" {
		return p
	}
	p := filepath.Join(repoRoot(t), ".cache", "chromium", "chromium")
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("no Chromium at %s: run `bash scripts/chromium.sh install` (make test does), or set KEYSEAL_CHROMIUM", p)
	}
	return p
}

// startDev runs dev mode in process: push on (a key change through the
// dev route seals or unseals within a second), the poller at an hour so
// that only the console's Retry unseal can unseal a tenant whose key was
// enabled behind the push's back.
func startDev(t *testing.T) *localserver.Server {
	return devtest.Start(t, map[string]string{"KEYSEAL_DEV_PUSH": "1"})
}

// recorder keeps what the page did: every request, every response's
// headers, console errors, uncaught exceptions and the browser's log
// (where CSP violations are reported).
type recorder struct {
	mu         sync.Mutex
	requests   []string
	headers    map[string]network.Headers
	logs       []*log.Entry
	exceptions []string
}

func (r *recorder) on(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.requests = append(r.requests, e.Request.URL)
	case *network.EventResponseReceived:
		r.headers[e.Response.URL] = e.Response.Headers
	case *log.EventEntryAdded:
		r.logs = append(r.logs, e.Entry)
	case *runtime.EventExceptionThrown:
		r.exceptions = append(r.exceptions, e.ExceptionDetails.Text+" "+describe(e.ExceptionDetails.Exception))
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			r.exceptions = append(r.exceptions, "console.error")
		}
	}
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

// check fails the test on a request to another origin, an uncaught
// exception, or a log entry other than the network's notes on the API's
// own 4xx/5xx answers (which the console shows in words).
func (r *recorder) check(t *testing.T, origin string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		t.Fatal("the recorder saw no request at all")
	}
	for _, u := range r.requests {
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s, outside %s", u, origin)
		}
	}
	for _, x := range r.exceptions {
		t.Errorf("page error: %s", x)
	}
	for _, e := range r.logs {
		if e.Source == log.EntrySourceNetwork && strings.Contains(e.Text, "the server responded with a status of") {
			continue
		}
		t.Errorf("browser log (%s, %s): %s", e.Source, e.Level, e.Text)
	}
}

type browser struct {
	t      *testing.T
	ctx    context.Context
	rec    *recorder
	origin string
	shots  string
}

// newBrowser starts a headless Chromium with a fresh profile and opens
// the console of s.
func newBrowser(t *testing.T, s *localserver.Server) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	rec := &recorder{headers: map[string]network.Headers{}}
	if err := chromedp.Listen(ctx, rec.on); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	shots := filepath.Join(repoRoot(t), "test-artifacts", "console")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, rec: rec, origin: s.URL, shots: shots}
	b.do(chromedp.Navigate(s.URL + "/console/"))
	b.do(chromedp.WaitVisible(chromedp.ID("signin")))
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failed")
		b.t.Fatal(err)
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// shown is the text of element id while it is rendered, else "".
func (b *browser) shown(id string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(() => { const e = document.getElementById(%q); return e && e.getClientRects().length ? e.textContent : ''; })()`, id))
}

// waitText waits until element id is rendered with every one of wants in
// its text, and returns the text.
func (b *browser) waitText(id string, wants ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := b.shown(id)
		ok := got != ""
		for _, w := range wants {
			ok = ok && strings.Contains(got, w)
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			b.screenshot("failed")
			b.t.Fatalf("#%s shows %q, want it to contain %q", id, got, wants)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the viewport as test-artifacts/console/<test>-<name>.png.
// A secret on screen (a pasted token, an agent key shown once) is masked
// first: screenshots are kept.
func (b *browser) screenshot(name string) []byte {
	b.t.Helper()
	mask := `(() => { const k = document.getElementById('agent-key'), t = document.getElementById('token');
		if (k.textContent) k.textContent = '(masked for the screenshot)'; if (t.value) t.value = '(masked)'; return ''; })()`
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](mask)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	path := filepath.Join(b.shots, b.t.Name()+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return png
}

// signInDev clicks the dev one-click sign-in and waits for the console.
func (b *browser) signInDev() {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.ID("signin-dev")), chromedp.WaitVisible(chromedp.ID("page-tenant-kms")))
	b.waitText("status", "demo")
}

func TestConsoleSealedBannerAndRetryUnseal(t *testing.T) {
	s := startDev(t)
	b := newBrowser(t, s)
	b.signInDev()
	if got := b.eval(`String(localStorage.length + sessionStorage.length) + '|' + document.cookie + '|' + document.getElementById('token').value`); got != "0||" {
		t.Fatalf("the token left memory: storage items|cookies|textarea = %q", got)
	}
	if b.shown("banner") != "" {
		t.Fatal("a banner shows before the key was touched")
	}
	b.waitText("health", "healthy", "normal")

	// The customer disables the key: the banner with the KMS error shows
	// within one refresh of the page.
	key := s.Credentials.KMSKeyID
	start := time.Now()
	setKeyState(t, s.URL, key, localkms.StateDisabled)
	b.waitText("banner", "Tenant sealed", "key_disabled", "Last KMS error", "is disabled")
	t.Logf("banner shown %v after the key was disabled (the page refreshes every 3 s)", time.Since(start).Round(100*time.Millisecond))
	b.waitText("status", "sealed")
	// The health card follows the seal (it is re-checked when the state moves).
	b.waitText("health", "unhealthy", "Disabled", "the key is disabled")
	png := b.screenshot("sealed")
	if os.Getenv("KEYSEAL_CONSOLE_DOCS") == "1" {
		if err := os.WriteFile(filepath.Join(repoRoot(t), "docs", "console-tenant-kms-sealed.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Retry while the key is still disabled: the 502 in words.
	b.do(chromedp.Click(chromedp.ID("retry-unseal")))
	b.waitText("unseal-result", "Unseal failed", "HTTP 502", "unseal_failed", "DisabledException")
	b.waitText("banner", "Tenant sealed")

	// The customer enables it behind the push's back (the poller runs
	// hourly): only the console's Retry unseal can unseal now.
	if err := s.Local.LocalKMS.SetState(key, localkms.StateEnabled); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Click(chromedp.ID("retry-unseal")))
	b.waitText("unseal-result", "Unsealed")
	b.do(chromedp.WaitNotVisible(chromedp.ID("banner")))
	b.waitText("status", "active")
	b.screenshot("unsealed")

	// Monitoring -> Audit Logs, filtered by the unseal action.
	b.do(chromedp.Click(chromedp.ID("nav-audit")), chromedp.WaitVisible(chromedp.ID("page-audit")),
		chromedp.SetValue(chromedp.ID("audit-action"), "byok.kms.unseal"), chromedp.Click(chromedp.ID("audit-apply")))
	row := b.waitText("audit-entries", "byok.kms.unseal", "critical", "admin:dev-admin")
	if strings.Contains(row, "byok.kms.seal ") {
		t.Fatalf("the filter let other actions through: %q", row)
	}
	if n := b.eval(`String(document.querySelectorAll('#audit-entries tr.critical[data-action="byok.kms.unseal"]').length)`); n != "1" {
		t.Fatalf("%s critical byok.kms.unseal rows, want 1", n)
	}
	b.do(chromedp.Click(chromedp.ID("audit-verify")))
	b.waitText("audit-verify-result", "Chain verified")
	b.screenshot("audit")
	b.rec.check(t, b.origin)
}

func TestConsoleRevokeNeedsTheTypedTenantID(t *testing.T) {
	s := startDev(t)
	b := newBrowser(t, s)

	// A pasted token the API refuses: its 401 in words.
	b.do(chromedp.SetValue(chromedp.ID("token"), "not-a-jwt"), chromedp.Click(chromedp.ID("signin-token")))
	b.waitText("signin-error", "Your token was not accepted", "HTTP 401")
	b.signInDev()

	// Bad input gets the API's own message.
	b.do(chromedp.Click(chromedp.ID("agent-create")))
	b.waitText("agents-error", "name is required", "HTTP 400")

	// A tmk rotation makes v2 active, so v1 can be revoked.
	b.do(chromedp.Click(chromedp.ID("rotate")))
	b.waitText("versions-result", "active version is v2")
	b.do(chromedp.Click(chromedp.CSS(`button[data-version="1"]`)), chromedp.WaitVisible(chromedp.ID("revoke-panel")))
	b.waitText("revoke-tenant", "demo")

	// A mistyped tenant id: keyseal refuses (before spending the step-up).
	b.do(chromedp.SetValue(chromedp.ID("revoke-confirm"), "dem0"), chromedp.Click(chromedp.ID("revoke-submit")))
	b.waitText("versions-error", "confirm must be your tenant id", "HTTP 400")
	b.waitText("versions", "v1", "retained")
	b.screenshot("revoke-mistyped")

	b.do(chromedp.SetValue(chromedp.ID("revoke-confirm"), "demo"), chromedp.Click(chromedp.ID("revoke-submit")))
	b.waitText("versions-result", "Revoked v1", "(tenant active)")
	b.do(chromedp.WaitNotVisible(chromedp.ID("revoke-panel")))
	b.waitText("versions", "revoked")
	b.screenshot("revoked")

	// The waiver refuses an acknowledgment without its box ticked.
	b.do(chromedp.SetValue(chromedp.ID("waiver-by"), "ops@example.com"), chromedp.Click(chromedp.ID("waiver-ack")))
	b.waitText("waiver-error", "acknowledged must be true", "HTTP 400")
	b.do(chromedp.Click(chromedp.ID("waiver-ack-box")), chromedp.Click(chromedp.ID("waiver-ack")))
	b.waitText("waiver-result", "Acknowledged")
	b.waitText("waiver-status", "ops@example.com")

	// An agent: its key shown once, then revoked with a second click.
	b.do(chromedp.SetValue(chromedp.ID("agent-name"), "ci-agent"), chromedp.Click(chromedp.ID("agent-create")))
	b.waitText("agent-key-box", "ci-agent", "ksa_")
	b.do(chromedp.Click(chromedp.ID("agent-key-hide")), chromedp.WaitNotVisible(chromedp.ID("agent-key-box")))
	if b.eval(`document.getElementById('agent-key').textContent`) != "" {
		t.Fatal("the agent key stays in the page after it was hidden")
	}
	b.waitText("agents", "ci-agent")
	revoke := chromedp.JSPath(`[...document.querySelectorAll('#agents tr')].find(r => r.textContent.includes('ci-agent')).querySelector('button')`)
	b.do(chromedp.Click(revoke))
	b.waitText("agents", "Confirm revoke of ci-agent")
	b.do(chromedp.Click(revoke))
	b.waitText("agents", "ci-agent", "revoked ")
	b.rec.check(t, b.origin)
}

func TestConsoleCSPAndOrigins(t *testing.T) {
	s := startDev(t)
	b := newBrowser(t, s)
	// Sign in by pasting a token (one from the identity provider; here dev
	// mode's).
	b.do(chromedp.SetValue(chromedp.ID("token"), devAdminToken(t, s.URL)), chromedp.Click(chromedp.ID("signin-token")),
		chromedp.WaitVisible(chromedp.ID("page-tenant-kms")))
	b.waitText("agents", "demo-agent")
	b.rec.check(t, b.origin)

	b.rec.mu.Lock()
	for _, path := range []string{"/console/", "/console/console.js", "/console/console.css"} {
		h, ok := b.rec.headers[s.URL+path]
		if !ok {
			t.Errorf("no response seen for %s", path)
			continue
		}
		if got := fmt.Sprint(h["Content-Security-Policy"]); got != console.CSP {
			t.Errorf("%s: Content-Security-Policy %q, want %q", path, got, console.CSP)
		}
	}
	b.rec.logs = nil
	b.rec.mu.Unlock()

	// The browser enforces it: an injected inline script does not run, and
	// a request to another origin is refused before it leaves the page.
	if got := b.eval(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.head.append(s); return String(window.injected); })()`); got != "undefined" {
		t.Errorf("an inline script ran under the CSP: window.injected = %s", got)
	}
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`fetch('http://127.0.0.2:9/').then(() => 'sent', () => 'refused')`, chromedp.EvalAwaitPromise))
	if err != nil || got != "refused" {
		t.Errorf("a fetch to another origin: %q, %v", got, err)
	}
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	var violations []string
	for _, e := range b.rec.logs {
		if strings.Contains(e.Text, "Content Security Policy") {
			violations = append(violations, e.Text)
		}
	}
	if len(violations) < 2 {
		t.Errorf("want the browser to report both CSP violations, got %q", violations)
	}
	for _, u := range b.rec.requests {
		if strings.HasPrefix(u, "http://127.0.0.2") {
			t.Errorf("the cross-origin request was sent: %s", u)
		}
	}
}
