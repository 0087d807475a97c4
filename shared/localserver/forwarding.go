package localserver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/buspolicy"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/outbox"
)

// DevEventBusARN is dev mode's bus as GET /admin/tenant-kms/event-forwarding
// names it when KEYSEAL_EVENT_BUS_ARN is unset: a nominal ARN, since dev
// mode has no bus (its key events go to the in-process handler).
const DevEventBusARN = "arn:aws:events:" + devKeyRegion + ":" + devAccount + ":event-bus/keyseal-dev"

// devForwarding has dev mode answer the event-forwarding route for local
// keys too, under the key ARN its CloudTrail-shaped events give them.
func devForwarding(a *app.App, cfg config.Config) {
	a.Deps.EventBusARN = cfg.EventBusARN
	if a.Deps.EventBusARN == "" {
		a.Deps.EventBusARN = DevEventBusARN
	}
	a.Deps.ForwardKeyARN = func(k keyseal.KeyRef) (string, bool) {
		if k.Provider != keyseal.ProviderLocal {
			return "", false
		}
		return DevKeyARN(k.KeyID), true
	}
}

// localStackForwarding names LocalStack's bus (its real ARN, unless
// KEYSEAL_EVENT_BUS_ARN says otherwise) and lets the route read its
// policy, which the local server, unlike the admin Lambda, may.
func localStackForwarding(ctx context.Context, a *app.App, c *eventbridge.Client, bus string) error {
	policy := func(ctx context.Context) (*eventbridge.DescribeEventBusOutput, error) {
		return c.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(bus)})
	}
	if a.Deps.EventBusARN == "" {
		out, err := policy(ctx)
		if err != nil {
			return fmt.Errorf("describe event bus %s: %w", bus, err)
		}
		a.Deps.EventBusARN = aws.ToString(out.Arn)
	}
	a.Deps.BusPolicy = func(ctx context.Context) (string, error) {
		out, err := policy(ctx)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Policy), nil
	}
	return nil
}

// ReconcileSink publishes through Sink and then, when a tenant
// registered, migrated or left a key among what it published, reconciles
// the bus policy: LocalStack mode's stand-in for the stack's rule on those
// events invoking the bus-policy Lambda. A failed reconcile is logged,
// never a failed publish (the event was delivered; the next one, or the
// next start, reconciles again).
type ReconcileSink struct {
	Sink       outbox.Sink
	Reconciler *buspolicy.Reconciler
	Log        *slog.Logger
}

// keyChanges are the event types that change the set of keys in use.
var keyChanges = []string{keyseal.EventRegistered, keyseal.EventMigrated, keyseal.EventDeregistered}

// Publish implements outbox.Sink.
func (s *ReconcileSink) Publish(ctx context.Context, es []keyseal.Event) []error {
	errs := s.Sink.Publish(ctx, es)
	for i, e := range es {
		if errs[i] == nil && slices.Contains(keyChanges, e.Type) {
			if _, err := s.Reconciler.Reconcile(ctx); err != nil {
				s.Log.WarnContext(ctx, "bus policy reconcile failed", "err", err)
			}
			break
		}
	}
	return errs
}
