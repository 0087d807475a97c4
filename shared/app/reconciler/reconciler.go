// Package reconciler wires the bus-policy Lambda. It is apart from package
// app for the reason package publisher is: the function calls no KMS, so
// it links neither the KMS providers nor the Google and Azure SDKs.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/buspolicy"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/internal/jsonlog"
)

// New wires the reconcile of keyseal's bus policy: the key-ref index of
// the table (KEYSEAL_TABLE) against the policy of the bus
// (KEYSEAL_EVENT_BUS), in organization mode when KEYSEAL_EVENT_ORG_ID is
// set. It reads the table's index only; it writes nothing there.
func New(ctx context.Context, getenv config.Getenv) (*buspolicy.Reconciler, error) {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = errors.Join(cfg.RequireEvents(), requireTable(cfg))
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return &buspolicy.Reconciler{Index: dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.Table),
		Client: eventbridge.NewFromConfig(awsCfg), Bus: cfg.EventBus, OrgID: cfg.EventOrgID, Log: jsonlog.New(cfg.LogLevel)}, nil
}

func requireTable(c config.Config) error {
	if c.Table == "" {
		return errors.New("KEYSEAL_TABLE is required")
	}
	return nil
}

// Must is New for the Lambda's main: a configuration error is printed
// naming the function and the process exits.
func Must(function string) *buspolicy.Reconciler {
	r, err := New(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
	return r
}
