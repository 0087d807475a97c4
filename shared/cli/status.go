package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/client"
)

func (a *app) loginCommand() *cobra.Command {
	var dev, stdin bool
	var tenant, subject string
	cmd := &cobra.Command{
		Use:   "login (--dev | --token-stdin)",
		Short: "Store an admin token in the profile",
		Long: `login stores the deployment URL and an admin token in the profile (the config
file is written with mode 0600). --dev asks the dev server of make run for a
fresh MFA admin token (POST /dev/admin-token, loopback only); --token-stdin
reads a token you got from your identity provider.`,
		Example: `  keyseal login --dev
  keyseal login --dev --tenant acme --subject alice
  keyseal --url https://api.example.com/prod --profile prod login --token-stdin < token.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dev == stdin {
				return errors.New("pass exactly one of --dev and --token-stdin")
			}
			var tok string
			if dev {
				c, err := a.client()
				if err != nil {
					return err
				}
				ctx, cancel := a.reqCtx(cmd)
				defer cancel()
				if tok, err = c.DevAdminToken(ctx, tenant, subject); err != nil {
					return err
				}
			} else {
				b, err := io.ReadAll(io.LimitReader(a.env.Stdin, 64<<10))
				if err != nil {
					return fmt.Errorf("reading the token from stdin: %w", err)
				}
				tok = strings.TrimSpace(string(b))
				if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
					return errors.New("--token-stdin: stdin must hold one token")
				}
			}
			cfg, err := loadConfig(a.config)
			if err != nil {
				return err
			}
			cfg.Profiles[a.profile] = Profile{URL: a.url, Token: tok}
			if err := saveConfig(a.config, cfg); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"profile": a.profile, "url": a.url, "config": a.config})
			}
			a.out("Logged in to %s; the token is in profile %q of %s.\n", a.url, a.profile, a.config)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "fetch a dev admin token from the dev server (make run)")
	cmd.Flags().BoolVar(&stdin, "token-stdin", false, "read the admin token from stdin")
	cmd.Flags().StringVar(&tenant, "tenant", "", "with --dev: the tenant (default demo)")
	cmd.Flags().StringVar(&subject, "subject", "", "with --dev: the admin's subject (default dev-admin)")
	return cmd
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the tenant's seal state, key, versions and rotation age",
		Long: `status shows the tenant's key custody in one screen: seal state and reason,
the last KMS error, the last verify, the versions and the rotation age.
It exits 2 when the tenant is sealed or revoked, 0 when active.`,
		Example: `  keyseal status
  keyseal status --json | jq .status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				v, err := c.TenantKMS(ctx)
				if err != nil {
					return err
				}
				if a.json {
					err = a.printJSON(v)
				} else {
					a.printStatus(v)
				}
				if err == nil && v.Status != "active" {
					return exitError{ExitSealed}
				}
				return err
			})
		},
	}
}

// ago is t as a time and an age ("2026-12-02T01:20:00Z (3m ago)").
func (a *app) ago(t time.Time) string {
	d := a.env.Now().Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return t.UTC().Format(time.RFC3339) + " (in " + (-d).String() + ")"
	case d < time.Minute:
		return t.UTC().Format(time.RFC3339) + fmt.Sprintf(" (%ds ago)", int(d/time.Second))
	case d < time.Hour:
		return t.UTC().Format(time.RFC3339) + fmt.Sprintf(" (%dm ago)", int(d/time.Minute))
	case d < 48*time.Hour:
		return t.UTC().Format(time.RFC3339) + fmt.Sprintf(" (%dh ago)", int(d/time.Hour))
	}
	return t.UTC().Format(time.RFC3339) + fmt.Sprintf(" (%dd ago)", int(d/(24*time.Hour)))
}

func (a *app) stateColor(s string) string {
	switch s {
	case "active", "healthy", "ok", "normal":
		return a.paint(green, s)
	case "sealed", "revoked", "failing", "unhealthy", "critical", "degraded":
		return a.paint(red, s)
	}
	return a.paint(yellow, s)
}

func (a *app) printStatus(v api.TenantView) {
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	row("Tenant", v.TenantID)
	row("Status", a.stateColor(v.Status))
	if v.SealReason != nil {
		row("Seal reason", reasonText(*v.SealReason))
	}
	if v.SealedSince != nil {
		row("Sealed since", a.ago(*v.SealedSince))
	}
	if v.LastVerifyError != nil {
		row("Last KMS error", a.paint(red, *v.LastVerifyError))
	}
	if v.LastVerifiedAt != nil {
		row("Last verify", fmt.Sprintf("%s, %d ms", a.ago(*v.LastVerifiedAt), v.LastLatencyMS))
	} else {
		row("Last verify", "never")
	}
	reach := "yes"
	if !v.KMSReachable {
		reach = a.paint(red, "no")
	}
	if v.ServingFromCacheUntil != nil {
		reach += ", serving from cache until " + a.ago(*v.ServingFromCacheUntil)
	}
	row("KMS reachable", reach)
	key := v.Provider + " " + v.KeyID
	if !v.BYOK {
		key += " (keyseal-managed, not BYOK)"
	}
	row("Key", key)
	due := ""
	if v.RotationDue {
		due = " " + a.paint(yellow, "(rotation due: keyseal key rotate --type tmk)")
	}
	row("Rotation age", fmt.Sprintf("%d days, last rotated %s%s", v.RotationAgeDays, v.RotatedAt.UTC().Format(time.RFC3339), due))
	if v.Waiver != nil {
		switch {
		case v.Waiver.Acknowledged:
			row("Legal waiver", "acknowledged")
		case v.Waiver.RequiresReacknowledgment:
			row("Legal waiver", a.paint(yellow, "new version to acknowledge (keyseal waiver show)"))
		default:
			row("Legal waiver", a.paint(yellow, "not acknowledged (keyseal waiver show)"))
		}
	}
	row("Active version", fmt.Sprintf("v%d", v.ActiveVersion))
	w.Flush()
	switch v.Status {
	case "sealed":
		a.out("\nSealed: agents get no sessions. Restore the key's access (keyseal health shows how), then run keyseal unseal.\n")
	case "revoked":
		a.out("\nRevoked: the active TMK version was crypto-erased; keyseal key rotate --type tmk creates a new one.\n")
	}
	if len(v.Versions) == 0 {
		return
	}
	a.out("\nVersions\n")
	w = tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  VERSION\tSTATE\tAGE\tPROVIDER\tKEY")
	for _, ver := range v.Versions {
		state := "retired"
		switch {
		case ver.RevokedAt != nil:
			state = a.paint(red, "revoked")
		case ver.Active && ver.RotationOverdue:
			state = a.paint(yellow, "active, rotation overdue")
		case ver.Active:
			state = a.paint(green, "active")
		}
		fmt.Fprintf(w, "  v%d\t%s\t%dd\t%s\t%s\n", ver.Version, state, ver.AgeDays, ver.Provider, ver.KeyID)
	}
	w.Flush()
}

func (a *app) unsealCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unseal",
		Short: "Get a step-up token and unseal the tenant",
		Long: `unseal asks the API for a step-up token (your sign-in must be recent and with
MFA) and unseals the tenant with it. keyseal checks the key live first: a key
that still fails is refused (502, with the reason), an active tenant answers
409 not_sealed.`,
		Example: `  keyseal unseal
  keyseal unseal --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				su, err := a.stepUp(ctx, c)
				if err != nil {
					return err
				}
				r, err := c.Unseal(ctx, su)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(r)
				}
				a.out("%s the tenant is active again; agents get sessions.\n", a.paint(green, "Unsealed:"))
				return nil
			})
		},
	}
}

func (a *app) healthCommand() *cobra.Command {
	var service bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe the tenant's key live (latency class, checks, diagnosis)",
		Long: `health runs the live BYOK probe (GET /admin/tenant-kms/health): a fresh wrap
and unwrap under the key, its latency class, the key's state and, when it
fails, the diagnosis and the commands that fix it. --service checks the
service itself (GET /health, no token).`,
		Example: `  keyseal health
  keyseal health --service`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.reqCtx(cmd)
			defer cancel()
			if service {
				c, err := a.client()
				if err != nil {
					return err
				}
				h, err := c.Health(ctx)
				if _, ok := errors.AsType[*client.Error](err); ok && h.Status != "" {
					// 503 degraded: the body says which check failed.
					if a.json {
						_ = a.printJSON(h)
					} else {
						a.out("Service %s (store %s)\n", a.stateColor(h.Status), a.stateColor(h.Checks["store"]))
					}
					return exitError{ExitError}
				}
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(h)
				}
				a.out("Service %s (store %s)\n", a.stateColor(h.Status), a.stateColor(h.Checks["store"]))
				return nil
			}
			c, err := a.admin()
			if err != nil {
				return err
			}
			h, err := c.TenantHealth(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(h)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
			row("Health", a.stateColor(h.Status))
			row("Latency", fmt.Sprintf("%d ms (%s)", h.LatencyMS, a.stateColor(h.LatencyClass)))
			row("Tenant", a.stateColor(h.TenantStatus))
			row("Key", h.Provider+" "+h.KeyID)
			row("Key state", h.Checks.KeyState)
			row("CMK accessible", yesNo(h.Checks.CMKAccessible))
			row("TMK valid", yesNo(h.Checks.TMKValid))
			if h.Reason != "" {
				row("Reason", reasonText(h.Reason))
			}
			if h.KMSError != "" {
				row("KMS error", h.KMSError)
			}
			cached := ""
			if h.Cached {
				cached = " (cached answer)"
			}
			row("Checked", a.ago(h.CheckedAt)+cached)
			w.Flush()
			if h.Diagnosis != "" {
				a.out("\n%s\n", h.Diagnosis)
			}
			for _, r := range h.Remediation {
				a.out("  - %s\n", r.Action)
				if r.Command != "" {
					a.out("    %s\n", r.Command)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&service, "service", false, "check the service (GET /health) instead of the tenant's key")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
