package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/client"
)

// fieldArgs parses name=value arguments: a provider's key fields.
func fieldArgs(args []string) (map[string]string, error) {
	fields := map[string]string{}
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q must be name=value (e.g. key_arn=arn:aws:kms:...)", arg)
		}
		if _, dup := fields[k]; dup {
			return nil, fmt.Errorf("field %s given twice", k)
		}
		fields[k] = v
	}
	return fields, nil
}

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Register, migrate, rotate, revoke or deregister the tenant's key",
		Example: `  keyseal key register --provider aws-kms key_arn=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
  keyseal key rotate --type tmk
  keyseal key revoke 1 --confirm demo`,
	}
	cmd.AddCommand(a.keyRegisterCommand("register"), a.keyRegisterCommand("migrate"), a.keyRotateCommand(),
		a.keyRevokeCommand(), a.keyPolicyCommand(), a.keyForwardingCommand(), a.keyDeregisterCommand())
	return cmd
}

// keyRegisterCommand is register or migrate: same body, both step-up.
func (a *app) keyRegisterCommand(verb string) *cobra.Command {
	var provider string
	short := "Register the tenant's own key (BYOK; step-up)"
	if verb == "migrate" {
		short = "Move the tenant to another key, re-wrapping its TMK versions (step-up)"
	}
	cmd := &cobra.Command{
		Use:   verb + " --provider PROVIDER name=value...",
		Short: short,
		Long: short + `.

The fields are the provider's: aws-kms key_arn (and role_arn, external_id when
keyseal assumes a role in your account), gcp-kms key_name, azure-kv key_url,
local key_id (dev mode). The legal waiver must be acknowledged first
(keyseal waiver ack).`,
		Example: fmt.Sprintf(`  keyseal key %[1]s --provider aws-kms key_arn=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
  keyseal key %[1]s --provider gcp-kms key_name=projects/p/locations/global/keyRings/r/cryptoKeys/k
  keyseal key %[1]s --provider local key_id=$(curl -s -XPOST localhost:8080/dev/kms/keys | jq -r .key_id)`, verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			if provider == "" {
				return errors.New("--provider is required: aws-kms, gcp-kms, azure-kv or local")
			}
			fields, err := fieldArgs(args)
			if err != nil {
				return err
			}
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				su, err := a.stepUp(ctx, c)
				if err != nil {
					return err
				}
				var v api.TenantView
				if verb == "migrate" {
					v, err = c.Migrate(ctx, su, provider, fields)
				} else {
					v, err = c.Register(ctx, su, provider, fields)
				}
				if err != nil {
					return a.withPolicy(err)
				}
				if a.json {
					return a.printJSON(v)
				}
				a.out("%s tenant %s now uses %s %s (active version v%d).\n", a.paint(green, strings.ToUpper(verb[:1])+verb[1:]+"ed:"),
					v.TenantID, v.Provider, v.KeyID, v.ActiveVersion)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "aws-kms, gcp-kms, azure-kv or local")
	return cmd
}

// withPolicy prints the policy or grant a cannot_access_cmk answer carries
// before the error itself.
func (a *app) withPolicy(err error) error {
	e, ok := errors.AsType[*client.Error](err)
	if !ok || a.json {
		return err
	}
	for _, name := range []string{"required_key_policy", "required_grant"} {
		if raw, ok := e.Extra[name]; ok {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				b, _ := json.MarshalIndent(v, "", "  ")
				fmt.Fprintf(a.env.Stderr, "The %s keyseal needs:\n%s\n", strings.ReplaceAll(strings.TrimPrefix(name, "required_"), "_", " "), b)
			}
		}
	}
	return err
}

func (a *app) keyRotateCommand() *cobra.Command {
	var typ, reason string
	cmd := &cobra.Command{
		Use:   "rotate --type tmk|dek|rewrap",
		Short: "Rotate the tenant's TMK (tmk), data keys (dek) or re-wrap under the key (rewrap)",
		Example: `  keyseal key rotate --type tmk --reason "annual rotation"
  keyseal key rotate --type rewrap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ == "" {
				return errors.New("--type is required: tmk, dek or rewrap")
			}
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.Rotate(ctx, client.RotateRequest{RotationType: typ, Reason: reason})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(r)
				}
				a.out("%s %s rotation at %s; active version v%d.\n", a.paint(green, "Rotated:"), r.RotationType, r.RotatedAt.UTC().Format(time.RFC3339), r.ActiveVersion)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "tmk, dek or rewrap")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

func (a *app) keyRevokeCommand() *cobra.Command {
	var confirm string
	cmd := &cobra.Command{
		Use:   "revoke VERSION --confirm TENANT_ID",
		Short: "Crypto-erase a TMK version (step-up; cannot be undone)",
		Long: `revoke deletes a TMK version's wrapped key: what it protected can no longer be
decrypted. --confirm must be your tenant id, as the API requires. Revoking
the active version revokes the tenant until a tmk rotation.`,
		Example: `  keyseal key revoke 1 --confirm demo
  keyseal key revoke v2 --confirm acme`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(strings.TrimPrefix(args[0], "v"))
			if err != nil || n < 1 {
				return fmt.Errorf("VERSION %q must be a TMK version number (3 or v3)", args[0])
			}
			if confirm == "" {
				return errors.New("--confirm TENANT_ID is required: revoking crypto-erases the version and cannot be undone")
			}
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				su, err := a.stepUp(ctx, c)
				if err != nil {
					return err
				}
				r, err := c.RevokeVersion(ctx, su, n, confirm)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(r)
				}
				a.out("%s v%d at %s; tenant %s.\n%s.\n", a.paint(red, "Revoked:"), r.Version, r.RevokedAt.UTC().Format(time.RFC3339), a.stateColor(r.TenantStatus), r.Note)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&confirm, "confirm", "", "your tenant id, to confirm")
	return cmd
}

func (a *app) keyPolicyCommand() *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:   "policy [--provider PROVIDER] [name=value...]",
		Short: "Print the key policy (aws-kms) or grant (gcp-kms, azure-kv) keyseal needs",
		Example: `  keyseal key policy
  keyseal key policy --provider aws-kms key_arn=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
		RunE: func(cmd *cobra.Command, args []string) error {
			fields, err := fieldArgs(args)
			if err != nil {
				return err
			}
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				raw, err := c.KeyPolicy(ctx, provider, fields)
				if err != nil {
					return err
				}
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				return a.printJSON(v) // a policy document is JSON either way
			})
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "aws-kms, gcp-kms, azure-kv or local (default: the registered key's)")
	return cmd
}

// keyForwardingCommand prints what the customer deploys so their KMS
// events reach keyseal's bus: the CloudFormation template by default (ready
// for `aws cloudformation deploy`), the whole answer with --json.
func (a *app) keyForwardingCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "forwarding",
		Short: "Print the CloudFormation template that forwards the key's KMS events to keyseal (aws-kms)",
		Example: `  keyseal key forwarding > keyseal-forwarding.json
  keyseal key forwarding --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := c.EventForwarding(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(f)
				}
				a.out("%s\n", f.CloudFormation)
				fmt.Fprintf(cmd.ErrOrStderr(), "deploy it in account %s, region %s: %s\n", f.Account, f.Region, f.Deploy)
				return nil
			})
		},
	}
}

func (a *app) keyDeregisterCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "deregister --yes",
		Short:   "Stop using the tenant's own key (step-up)",
		Example: `  keyseal key deregister --yes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				return errors.New("--yes is required: deregistering stops using your key")
			}
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				su, err := a.stepUp(ctx, c)
				if err != nil {
					return err
				}
				v, err := c.Deregister(ctx, su)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(v)
				}
				a.out("%s tenant %s is %s.\n", a.paint(yellow, "Deregistered:"), v.TenantID, a.stateColor(v.Status))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm")
	return cmd
}

func (a *app) waiverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "waiver",
		Short: "Read or acknowledge the legal waiver that BYOK registration requires",
		Example: `  keyseal waiver show
  keyseal waiver ack --by legal@example.com`,
	}
	show := &cobra.Command{
		Use:     "show",
		Short:   "Print the current legal waiver and whether the tenant acknowledged it",
		Example: `  keyseal waiver show`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				w, err := c.Waiver(ctx)
				if err != nil {
					return err
				}
				st, err := c.WaiverStatus(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{"waiver": w, "status": st})
				}
				a.out("Legal waiver %s (sha256 %s)\n\n%s\n\n", w.Version, w.SHA256, strings.TrimSpace(w.Text))
				switch {
				case st.Acknowledged:
					a.out("%s by %s at %s.\n", a.paint(green, "Acknowledged"), deref(st.AcknowledgedBy), when(st.AcknowledgedAt))
				case st.RequiresReacknowledgment:
					a.out("%s (version %s was); acknowledge it with: keyseal waiver ack --by you@example.com\n", a.paint(yellow, "Not acknowledged"), deref(st.AcknowledgedVersion))
				default:
					a.out("%s; acknowledge it with: keyseal waiver ack --by you@example.com\n", a.paint(yellow, "Not acknowledged"))
				}
				return nil
			})
		},
	}
	var by string
	ack := &cobra.Command{
		Use:     "ack --by EMAIL",
		Short:   "Acknowledge the current legal waiver",
		Example: `  keyseal waiver ack --by legal@example.com`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if by == "" {
				return errors.New("--by is required: the email of who acknowledges")
			}
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.AcknowledgeWaiver(ctx, client.WaiverAck{AcknowledgedBy: by})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(st)
				}
				a.out("%s waiver %s by %s.\n", a.paint(green, "Acknowledged:"), st.Version, deref(st.AcknowledgedBy))
				return nil
			})
		},
	}
	ack.Flags().StringVar(&by, "by", "", "who acknowledges (an email)")
	cmd.AddCommand(show, ack)
	return cmd
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func when(t *time.Time) string {
	if t == nil {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
