// Package buspolicy keeps keyseal's event bus open to the AWS accounts
// whose KMS keys registered tenants use, so the customers' forwarded KMS
// events (push sealing, shared/keyevents) are accepted, and closes it to
// an account once no tenant uses a key there.
//
// The design is a reconcile, not an edit per registration: the wanted
// set of accounts is derived from the key-ref index (KeyIndex.KeysInUse,
// the tenants' own rows), the current set from the bus policy
// (DescribeEventBus), and the difference is applied with PutPermission and
// RemovePermission, one statement per account under a stable id
// (policydoc.StatementID). Running it twice, or two at once, converges on the same
// policy: every step is idempotent (a statement already there is not put
// again, one already gone is not an error), and a run that read the index
// before a change is followed by the run that change triggers. The
// function that runs it is triggered by the registered, migrated and
// deregistered events and by a schedule that repairs a missed run (see
// infra/stack/buspolicy.go).
package buspolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/buspolicy/policydoc"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// API is the slice of the EventBridge client the reconcile uses.
type API interface {
	DescribeEventBus(ctx context.Context, in *eventbridge.DescribeEventBusInput, optFns ...func(*eventbridge.Options)) (*eventbridge.DescribeEventBusOutput, error)
	PutPermission(ctx context.Context, in *eventbridge.PutPermissionInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutPermissionOutput, error)
	RemovePermission(ctx context.Context, in *eventbridge.RemovePermissionInput, optFns ...func(*eventbridge.Options)) (*eventbridge.RemovePermissionOutput, error)
}

var _ API = (*eventbridge.Client)(nil)

// Reconciler reconciles one bus's policy with the key-ref index.
type Reconciler struct {
	Index  keyseal.KeyIndex
	Client API
	// Bus is the event bus name (KEYSEAL_EVENT_BUS).
	Bus string
	// OrgID, when set (KEYSEAL_EVENT_ORG_ID), means one statement the
	// stack defines admits the whole AWS Organization: the reconcile
	// then wants no per-account statement and removes any left from
	// before.
	OrgID string
	Log   *slog.Logger
}

// Result is what one reconcile found and changed; account ids, sorted.
type Result struct {
	Wanted  []string `json:"wanted"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// Reconcile makes the bus policy's per-account statements exactly the
// accounts of the aws-kms keys in use (none in organization mode),
// keyseal's own account excepted (its events need no statement). It
// removes before it adds, so a policy near its size limit makes room
// first, and it applies every change it can before returning the errors
// of those it could not (an account refused for the policy size does not
// keep another from being removed).
func (r *Reconciler) Reconcile(ctx context.Context) (Result, error) {
	bus, err := r.Client.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(r.Bus)})
	if err != nil {
		return Result{}, fmt.Errorf("describe event bus %s: %w", r.Bus, err)
	}
	own := policydoc.AccountOfARN(aws.ToString(bus.Arn))
	current, err := policydoc.Accounts(aws.ToString(bus.Policy))
	if err != nil {
		return Result{}, fmt.Errorf("event bus %s: %w", r.Bus, err)
	}
	wanted := map[string]bool{}
	if r.OrgID == "" {
		keys, err := r.Index.KeysInUse(ctx, keyseal.ProviderAWS)
		if err != nil {
			return Result{}, fmt.Errorf("keys in use: %w", err)
		}
		for _, k := range keys {
			if a := policydoc.AccountOfARN(k); a != "" && a != own {
				wanted[a] = true
			}
		}
	}
	res := Result{Wanted: slices.Sorted(maps.Keys(wanted)), Added: []string{}, Removed: []string{}}
	var errs []error
	for _, a := range slices.Sorted(maps.Keys(current)) {
		if wanted[a] {
			continue
		}
		_, err := r.Client.RemovePermission(ctx, &eventbridge.RemovePermissionInput{EventBusName: aws.String(r.Bus), StatementId: aws.String(policydoc.StatementID(a))})
		if err != nil && !errors.As(err, new(*types.ResourceNotFoundException)) {
			errs = append(errs, fmt.Errorf("remove %s from event bus %s: %w", policydoc.StatementID(a), r.Bus, err))
			continue
		}
		res.Removed = append(res.Removed, a)
	}
	for _, a := range res.Wanted {
		if current[a] {
			continue
		}
		_, err := r.Client.PutPermission(ctx, &eventbridge.PutPermissionInput{EventBusName: aws.String(r.Bus),
			Action: aws.String("events:PutEvents"), Principal: aws.String(a), StatementId: aws.String(policydoc.StatementID(a))})
		if err != nil {
			var tooBig *types.PolicyLengthExceededException
			if errors.As(err, &tooBig) {
				err = fmt.Errorf("%w (the bus policy is full: set an AWS Organization id, README \"Forwarding your KMS events\")", err)
			}
			errs = append(errs, fmt.Errorf("admit account %s on event bus %s: %w", a, r.Bus, err))
			continue
		}
		res.Added = append(res.Added, a)
	}
	if r.Log != nil && (len(res.Added) > 0 || len(res.Removed) > 0 || len(errs) > 0) {
		r.Log.InfoContext(ctx, "bus policy reconciled", "bus", r.Bus, "wanted", len(res.Wanted), "added", res.Added, "removed", res.Removed, "errors", len(errs))
	}
	return res, errors.Join(errs...)
}

// Handle is the Lambda entry point: any event (a tenant.kms.* event from
// the bus rule, the schedule's) runs one reconcile. An error fails the
// invocation, so EventBridge's asynchronous invocation retries it.
func (r *Reconciler) Handle(ctx context.Context, _ json.RawMessage) (Result, error) {
	return r.Reconcile(ctx)
}
