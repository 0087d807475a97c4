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
// (StatementID). Running it twice, or two at once, converges on the same
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
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// StatementPrefix begins the id of every statement the reconcile owns;
// it never touches another (the CDK's organization statement, an
// operator's own).
const StatementPrefix = "keyseal-account-"

// StatementID is the bus policy statement admitting account.
func StatementID(account string) string { return StatementPrefix + account }

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
	own := accountOfARN(aws.ToString(bus.Arn))
	current, err := statementAccounts(aws.ToString(bus.Policy))
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
			if a := accountOfARN(k); a != "" && a != own {
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
		_, err := r.Client.RemovePermission(ctx, &eventbridge.RemovePermissionInput{EventBusName: aws.String(r.Bus), StatementId: aws.String(StatementID(a))})
		if err != nil && !errors.As(err, new(*types.ResourceNotFoundException)) {
			errs = append(errs, fmt.Errorf("remove %s from event bus %s: %w", StatementID(a), r.Bus, err))
			continue
		}
		res.Removed = append(res.Removed, a)
	}
	for _, a := range res.Wanted {
		if current[a] {
			continue
		}
		_, err := r.Client.PutPermission(ctx, &eventbridge.PutPermissionInput{EventBusName: aws.String(r.Bus),
			Action: aws.String("events:PutEvents"), Principal: aws.String(a), StatementId: aws.String(StatementID(a))})
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

// isAccount reports whether s is a 12-digit AWS account id (no regular
// expression: every Lambda linking shared/api would build it at init).
func isAccount(s string) bool {
	return len(s) == 12 && strings.Trim(s, "0123456789") == ""
}

// accountOfARN is the account field of an ARN (arn:PARTITION:SERVICE:
// REGION:ACCOUNT:RESOURCE), "" when it has none.
func accountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" || !isAccount(parts[4]) {
		return ""
	}
	return parts[4]
}

// statementAccounts are the accounts of the policy's statements whose
// ids the reconcile owns. An empty policy has none.
func statementAccounts(policy string) (map[string]bool, error) {
	out := map[string]bool{}
	if policy == "" {
		return out, nil
	}
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return nil, fmt.Errorf("policy is not JSON: %w", err)
	}
	var sts []struct {
		Sid string `json:"Sid"`
	}
	// Statement may be one object or a list (IAM policy grammar).
	if len(doc.Statement) > 0 && doc.Statement[0] == '{' {
		doc.Statement = append(append([]byte{'['}, doc.Statement...), ']')
	}
	if len(doc.Statement) > 0 {
		if err := json.Unmarshal(doc.Statement, &sts); err != nil {
			return nil, fmt.Errorf("policy statements: %w", err)
		}
	}
	for _, st := range sts {
		if a, ok := strings.CutPrefix(st.Sid, StatementPrefix); ok && isAccount(a) {
			out[a] = true
		}
	}
	return out, nil
}

// Admits reports whether policy (a bus's, from DescribeEventBus) has the
// reconcile's statement for account.
func Admits(policy, account string) (bool, error) {
	got, err := statementAccounts(policy)
	return got[account], err
}
