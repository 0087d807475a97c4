package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func (a *app) auditCommand() *cobra.Command {
	var q client.AuditQuery
	var follow bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "audit [--action ACTION] [--follow]",
		Short: "List the tenant's audit log (oldest of the page first), or follow it",
		Long: `audit lists the newest entries of the tenant's hash-chained audit log, oldest
first, critical entries marked "!". --action keeps one action
(byok.kms.unseal, byok.kms.sealed, ...); --cursor pages back; --follow
prints new entries as they are written, polling every --interval, until
interrupted.`,
		Example: `  keyseal audit
  keyseal audit --action byok.kms.unseal --limit 5
  keyseal audit --follow
  keyseal audit --json | jq '.entries[].action'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.admin()
			if err != nil {
				return err
			}
			if follow {
				if q.Cursor != "" {
					return errors.New("--follow starts at the newest entries: drop --cursor")
				}
				return a.followAudit(cmd.Context(), c, q, interval)
			}
			ctx, cancel := a.reqCtx(cmd)
			defer cancel()
			page, err := c.Audit(ctx, q)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(page)
			}
			if len(page.Entries) == 0 {
				a.out("No audit entries%s.\n", actionNote(q.Action))
				return nil
			}
			for _, e := range slices.Backward(page.Entries) {
				a.printEntry(e)
			}
			if page.NextCursor != nil {
				a.out("(older entries: keyseal audit --cursor %s%s)\n", *page.NextCursor, actionFlag(q.Action))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Action, "action", "", "only this action (e.g. byok.kms.unseal)")
	f.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("entries per page, 1..%d (default 50)", audit.MaxPage))
	f.StringVar(&q.Cursor, "cursor", "", "a previous page's next cursor: the entries before it")
	f.BoolVarP(&follow, "follow", "f", false, "print new entries as they come, until interrupted")
	f.DurationVar(&interval, "interval", 2*time.Second, "with --follow: how often to poll")
	cmd.AddCommand(a.auditVerifyCommand(), a.auditCheckpointCommand())
	return cmd
}

func actionNote(action string) string {
	if action == "" {
		return ""
	}
	return " with action " + action
}

func actionFlag(action string) string {
	if action == "" {
		return ""
	}
	return " --action " + action
}

// printEntry writes one entry on one line: time, seq, severity, action,
// actor, details.
func (a *app) printEntry(e keyseal.AuditEntry) {
	mark := " "
	sev := e.Severity
	switch e.Severity {
	case keyseal.SeverityCritical:
		mark, sev = a.paint(red, "!"), a.paint(red, sev)
	case keyseal.SeverityWarning:
		sev = a.paint(yellow, sev)
	}
	var details []string
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		details = append(details, k+"="+e.Details[k])
	}
	line := fmt.Sprintf("%s %s #%d %-8s %s actor=%s", mark, e.TS.UTC().Format(time.RFC3339), e.Seq, sev, a.paint(bold, e.Action), e.Actor)
	if len(details) > 0 {
		line += " " + strings.Join(details, " ")
	}
	a.out("%s\n", line)
}

// followAudit prints the newest page, then every entry with a higher seq
// as it appears, polling the newest page each interval until ctx ends. A
// poll that fails is reported and retried next interval (only reads are
// repeated).
func (a *app) followAudit(ctx context.Context, c *client.Client, q client.AuditQuery, interval time.Duration) error {
	if interval < 100*time.Millisecond {
		return errors.New("--interval must be at least 100ms")
	}
	if q.Limit == 0 {
		q.Limit = 20
	}
	var last int64
	poll := func() error {
		rctx, cancel := context.WithTimeout(ctx, a.timeout)
		defer cancel()
		page, err := c.Audit(rctx, q)
		if err != nil {
			return err
		}
		for _, e := range slices.Backward(page.Entries) {
			if e.Seq <= last {
				continue
			}
			last = e.Seq
			if a.json {
				if err := a.printJSONLine(e); err != nil {
					return err
				}
				continue
			}
			a.printEntry(e)
		}
		return nil
	}
	if err := poll(); err != nil {
		return err // a first failure is a wrong URL or token: say so and stop
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := poll(); err != nil && ctx.Err() == nil {
				a.printError(err)
			}
		}
	}
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var checkpoint string
	cmd := &cobra.Command{
		Use:   "verify [--checkpoint CHECKPOINT]",
		Short: "Recompute the audit chain, or check it extends a saved checkpoint",
		Example: `  keyseal audit verify
  keyseal audit verify --checkpoint "$(keyseal audit checkpoint --json | jq -r .checkpoint)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				var (
					res audit.Result
					err error
				)
				if checkpoint != "" {
					res, err = c.VerifyCheckpoint(ctx, checkpoint)
				} else {
					res, err = c.VerifyAudit(ctx)
				}
				if err != nil {
					return err
				}
				if a.json {
					if err := a.printJSON(res); err != nil {
						return err
					}
				} else if res.Valid {
					extra := ""
					if res.CheckpointSize > 0 {
						extra = fmt.Sprintf(", extending the checkpoint of %d", res.CheckpointSize)
					}
					a.out("%s %d entries%s.\n", a.paint(green, "Audit chain valid:"), res.Entries, extra)
				} else {
					bad := ""
					if res.FirstBadSeq != nil {
						bad = fmt.Sprintf(" at entry #%d", *res.FirstBadSeq)
					}
					a.out("%s%s: %s (%d entries).\n", a.paint(red, "Audit chain BROKEN"), bad, res.Reason, res.Entries)
				}
				if !res.Valid {
					return exitError{ExitError}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "a signed checkpoint saved earlier (keyseal audit checkpoint)")
	return cmd
}

func (a *app) auditCheckpointCommand() *cobra.Command {
	var key bool
	cmd := &cobra.Command{
		Use:   "checkpoint [--key]",
		Short: "Print the chain head's signed checkpoint (or, with --key, its verifier key)",
		Example: `  keyseal audit checkpoint > checkpoint.txt
  keyseal audit checkpoint --key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd, func(ctx context.Context, c *client.Client) error {
				if key {
					k, err := c.CheckpointKey(ctx)
					if err != nil {
						return err
					}
					if a.json {
						return a.printJSON(k)
					}
					a.out("%s\n", k.VerifierKey)
					return nil
				}
				cp, err := c.Checkpoint(ctx)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(cp)
				}
				a.out("%s", cp.Checkpoint)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&key, "key", false, "print the verifier key instead")
	return cmd
}
