// Package cli is the keyseal admin CLI: cobra commands over shared/client,
// one per admin operation, with output for people (one screen, colour only
// on a terminal) or for scripts (--json, the API's own objects).
//
// Nothing here adds behaviour the API lacks: a step-up route gets its
// token from POST /admin/auth/step-up like any client, and every refusal
// is the API's own error, shown in words.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyseal/keyseal/shared/client"
)

// Exit codes: 0 success, 1 a failed command, 2 `keyseal status` of a
// tenant that is sealed or revoked (as `vault status` exits 2 when
// sealed), so scripts can test the state without parsing.
const (
	ExitOK     = 0
	ExitError  = 1
	ExitSealed = 2
)

// DefaultURL is the local server of `make run`.
const DefaultURL = "http://127.0.0.1:8080"

// Env is what a run of the CLI reads and writes: the process's in main,
// buffers and a map in tests.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	// Getenv reads KEYSEAL_URL, KEYSEAL_TOKEN, KEYSEAL_PROFILE,
	// KEYSEAL_CONFIG, NO_COLOR and HOME-derived defaults.
	Getenv func(string) string
	// HTTP, when set, sends every request (tests); nil uses the client's
	// default.
	HTTP *http.Client
	// Terminal reports whether w is a terminal (colour, relative times);
	// nil checks for a character device.
	Terminal func(w io.Writer) bool
	// Now is the clock of ages ("3m ago"); nil is time.Now.
	Now func() time.Time
}

// OSEnv is the process's environment.
func OSEnv() Env {
	return Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
}

// exitError carries a command's exit code other than ExitError (status's
// ExitSealed) without an error message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// app is one run: the global flags and the environment.
type app struct {
	env     Env
	url     string
	token   string
	profile string
	config  string
	json    bool
	timeout time.Duration
	color   bool
}

// Run executes the CLI with args (without the program name) and returns
// the exit code. ctx ends long-running commands (audit --follow).
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = eofReader{}
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Terminal == nil {
		env.Terminal = isTerminal
	}
	a := &app{env: env}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[exitError](err); ok {
		return e.code
	}
	a.printError(err)
	return ExitError
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyseal",
		Short: "Operate a keyseal deployment: seal state, unseal, keys, agents, audit, webhooks",
		Long: `keyseal is the admin CLI of a keyseal deployment. It calls the admin API
as the admin whose token it holds; step-up routes (unseal, register, migrate,
deregister, revoke) fetch a single-use step-up token from the API first.

Configuration, first found wins:
  --url / --token flags
  KEYSEAL_URL / KEYSEAL_TOKEN environment variables
  the profile (--profile, KEYSEAL_PROFILE, default "default") of the config
  file (--config, KEYSEAL_CONFIG, default ~/.config/keyseal/config.json)
The URL defaults to ` + DefaultURL + `, the server of make run.`,
		Example: `  keyseal login --dev          # a dev admin token from make run's server
  keyseal status
  keyseal unseal
  keyseal audit --action byok.kms.unseal
  KEYSEAL_URL=https://api.example.com/prod KEYSEAL_TOKEN=$JWT keyseal status --json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolve(cmd)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.url, "url", "", "keyseal API base URL (env KEYSEAL_URL)")
	f.StringVar(&a.token, "token", "", "admin token (env KEYSEAL_TOKEN; prefer the env or a profile: flags show in ps)")
	f.StringVar(&a.profile, "profile", "", "profile of the config file (env KEYSEAL_PROFILE, default \"default\")")
	f.StringVar(&a.config, "config", "", "config file (env KEYSEAL_CONFIG, default ~/.config/keyseal/config.json)")
	f.BoolVar(&a.json, "json", false, "print the API's JSON instead of text")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "bound of each API request")
	root.AddCommand(a.loginCommand(), a.statusCommand(), a.unsealCommand(), a.healthCommand(), a.keyCommand(),
		a.waiverCommand(), a.agentsCommand(), a.auditCommand(), a.webhooksCommand())
	return root
}

// resolve fills url, token and profile from flags, env and the profile
// file, in that order.
func (a *app) resolve(cmd *cobra.Command) error {
	if a.config == "" {
		a.config = a.env.Getenv("KEYSEAL_CONFIG")
	}
	if a.config == "" {
		p, err := defaultConfigPath(a.env.Getenv)
		if err != nil {
			return err
		}
		a.config = p
	}
	if a.profile == "" {
		a.profile = a.env.Getenv("KEYSEAL_PROFILE")
	}
	if a.profile == "" {
		a.profile = "default"
	}
	cfg, err := loadConfig(a.config)
	if err != nil {
		return err
	}
	prof := cfg.Profiles[a.profile]
	if !cmd.Flags().Changed("url") {
		a.url = first(a.env.Getenv("KEYSEAL_URL"), prof.URL, DefaultURL)
	}
	if !cmd.Flags().Changed("token") {
		a.token = first(a.env.Getenv("KEYSEAL_TOKEN"), prof.Token)
	}
	a.color = a.env.Terminal(a.env.Stdout) && a.env.Getenv("NO_COLOR") == ""
	return nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// client is the API client of this run, as the admin token resolved.
func (a *app) client() (*client.Client, error) {
	c, err := client.New(a.url, a.token)
	if err != nil {
		return nil, fmt.Errorf("--url / KEYSEAL_URL: %w", err)
	}
	if a.env.HTTP != nil {
		c = c.WithHTTPClient(a.env.HTTP)
	}
	return c.WithUserAgent("keyseal-cli"), nil
}

// admin is client() for a command that needs an admin token.
func (a *app) admin() (*client.Client, error) {
	if a.token == "" {
		return nil, errors.New("no admin token: run `keyseal login --dev` against make run's server, or set KEYSEAL_TOKEN (or --token) to an admin JWT")
	}
	return a.client()
}

// withAdmin runs f with the admin's client and a context bounded by
// --timeout: the start of every admin command.
func (a *app) withAdmin(cmd *cobra.Command, f func(ctx context.Context, c *client.Client) error) error {
	c, err := a.admin()
	if err != nil {
		return err
	}
	ctx, cancel := a.reqCtx(cmd)
	defer cancel()
	return f(ctx, c)
}

// reqCtx bounds one API request by --timeout.
func (a *app) reqCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// stepUp fetches a single-use step-up token: the same call any client
// makes, so a sign-in without fresh MFA is refused here, by the API.
func (a *app) stepUp(ctx context.Context, c *client.Client) (string, error) {
	su, err := c.StepUp(ctx)
	if err != nil {
		return "", fmt.Errorf("getting a step-up token: %w", err)
	}
	return su.StepUpToken, nil
}

// printJSON writes v indented to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// out writes text to stdout.
func (a *app) out(format string, args ...any) {
	fmt.Fprintf(a.env.Stdout, format, args...)
}

// printJSONLine writes v as one line of JSON (a stream: audit --follow).
func (a *app) printJSONLine(v any) error {
	return json.NewEncoder(a.env.Stdout).Encode(v)
}
