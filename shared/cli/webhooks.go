package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyseal/keyseal/shared/client"
)

func (a *app) webhooksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Manage webhook subscriptions to the tenant's key events",
		Example: `  keyseal webhooks create https://hooks.example.com/keyseal --event tenant.kms.sealed
  keyseal webhooks list`,
	}
	var in client.WebhookRequest
	create := &cobra.Command{
		Use:   "create URL [--event TYPE]...",
		Short: "Subscribe an https endpoint; its signing secret is printed once",
		Example: `  keyseal webhooks create https://hooks.example.com/keyseal
  keyseal webhooks create https://hooks.example.com/keyseal --event tenant.kms.sealed --event tenant.kms.unsealed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.URL = args[0]
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				w, err := c.CreateWebhook(ctx, in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(w)
				}
				a.out("Created webhook %s -> %s (events: %s).\nSigning secret (shown once, store it now):\n%s\n", w.ID, w.URL, strings.Join(w.Events, ", "), w.Secret)
				return nil
			})
		},
	}
	create.Flags().StringArrayVar(&in.Events, "event", nil, "an event type to deliver (repeat; default all)")
	create.Flags().StringVar(&in.Description, "description", "", "a note for people")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List the tenant's webhook subscriptions",
		Example: `  keyseal webhooks list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				l, err := c.Webhooks(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(l)
				}
				if len(l.Webhooks) == 0 {
					a.out("No webhooks: keyseal webhooks create URL makes one.\n")
					return nil
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tURL\tEVENTS\tSTATE")
				for _, h := range l.Webhooks {
					state := a.paint(green, "enabled")
					if h.Disabled {
						state = a.paint(red, "disabled: "+h.DisabledReason)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.ID, h.URL, strings.Join(h.Events, ","), state)
				}
				return w.Flush()
			})
		},
	}

	del := &cobra.Command{
		Use:     "delete WEBHOOK_ID",
		Short:   "Delete a webhook subscription",
		Example: `  keyseal webhooks delete wh_0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteWebhook(ctx, args[0]); err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{"id": args[0], "deleted": true})
				}
				a.out("Deleted webhook %s.\n", args[0])
				return nil
			})
		},
	}

	rotate := &cobra.Command{
		Use:     "rotate-secret WEBHOOK_ID",
		Short:   "Rotate a webhook's signing secret; the new one is printed once",
		Example: `  keyseal webhooks rotate-secret wh_0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.RotateWebhookSecret(ctx, args[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(r)
				}
				a.out("Rotated the secret of %s; the previous one signs until %s.\nNew signing secret (shown once, store it now):\n%s\n",
					r.WebhookID, r.PreviousExpiresAt.UTC().Format(time.RFC3339), r.Secret)
				return nil
			})
		},
	}

	test := &cobra.Command{
		Use:     "test WEBHOOK_ID",
		Short:   "Queue a webhook.test event for delivery",
		Example: `  keyseal webhooks test wh_0123456789abcdef && keyseal webhooks deliveries wh_0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.TestWebhook(ctx, args[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(r)
				}
				a.out("Queued test event %s for %s: keyseal webhooks deliveries %s shows the attempts.\n", r.EventID, r.WebhookID, r.WebhookID)
				return nil
			})
		},
	}

	var limit int
	deliveries := &cobra.Command{
		Use:     "deliveries WEBHOOK_ID",
		Short:   "List a webhook's latest delivery attempts",
		Example: `  keyseal webhooks deliveries wh_0123456789abcdef --limit 10`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				l, err := c.Deliveries(ctx, args[0], limit)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(l)
				}
				if len(l.Deliveries) == 0 {
					a.out("No delivery attempts yet.\n")
					return nil
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "AT\tEVENT\tTYPE\tATTEMPT\tOUTCOME\tHTTP\tMS\tERROR")
				for _, d := range l.Deliveries {
					outcome := d.Outcome
					if d.Error != "" {
						outcome = a.paint(red, outcome)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", d.At.UTC().Format(time.RFC3339), d.EventID, d.EventType, d.Attempt, outcome, d.ResponseCode, d.LatencyMS, d.Error)
				}
				return w.Flush()
			})
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 0, "how many attempts (default the API's)")

	cmd.AddCommand(create, list, del, rotate, test, deliveries)
	return cmd
}
