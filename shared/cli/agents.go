package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyseal/keyseal/shared/client"
)

func (a *app) agentsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "Create, list or revoke the tenant's agents",
		Example: `  keyseal agents create worker
  keyseal agents list`,
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an agent; its key is printed once",
		Long: `create makes an agent and prints its key. The API shows the key only this
once (keyseal stores a hash): put it in your secret store.`,
		Example: `  keyseal agents create worker
  keyseal agents create worker --json | jq -r .agent_key > agent.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				ag, err := c.CreateAgent(ctx, args[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(ag)
				}
				a.out("Created agent %s (%s).\nAgent key (shown once, store it now):\n%s\n", ag.ID, ag.Name, ag.Key)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the tenant's agents",
		Example: `  keyseal agents list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				l, err := c.Agents(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(l)
				}
				if len(l.Agents) == 0 {
					a.out("No agents: keyseal agents create NAME makes one.\n")
					return nil
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tCREATED\tBY\tSTATE")
				for _, ag := range l.Agents {
					state := a.paint(green, "active")
					if ag.RevokedAt != nil {
						state = a.paint(red, "revoked "+ag.RevokedAt.UTC().Format(time.RFC3339))
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ag.ID, ag.Name, ag.CreatedAt.UTC().Format(time.RFC3339), ag.CreatedBy, state)
				}
				return w.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke AGENT_ID",
		Short:   "Revoke an agent: its key stops working at once",
		Example: `  keyseal agents revoke ag_0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.RevokeAgent(ctx, args[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(r)
				}
				a.out("%s agent %s.\n", a.paint(red, "Revoked:"), r.AgentID)
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
