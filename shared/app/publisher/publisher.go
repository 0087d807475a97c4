// Package publisher wires the event-publisher Lambda. It is apart from
// package app so that Lambda, which calls no KMS, links neither the KMS
// providers nor the Google and Azure SDKs (about 11 MB of binary and
// their init time).
package publisher

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/events"
	"github.com/keyseal/keyseal/shared/internal/jsonlog"
	"github.com/keyseal/keyseal/shared/outbox"
)

// New wires the table stream's handler, putting outbox events to the bus.
// It needs no table access (the stream hands it the items) and no KMS.
func New(ctx context.Context, getenv config.Getenv) (*outbox.StreamHandler, error) {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = cfg.RequireEvents()
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return &outbox.StreamHandler{Sink: events.NewBridge(eventbridge.NewFromConfig(awsCfg), cfg.EventBus), Log: jsonlog.New(cfg.LogLevel)}, nil
}

// Must is New for the Lambda's main: a configuration error is printed
// naming the function and the process exits.
func Must(function string) *outbox.StreamHandler {
	h, err := New(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
	return h
}
