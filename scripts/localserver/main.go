// Command localserver runs the whole keyseal API on one port with the poller
// in process: dev mode (embedded store, local KMS; `make run`) or LocalStack
// mode (DynamoDB Local + LocalStack KMS/EventBridge; `make run-localstack`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/keyseal/keyseal/shared/localserver"
)

func main() {
	fs := flag.NewFlagSet("localserver", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: localserver [flags]

Runs keyseal's API locally. Configuration is the environment of docs/contract.md §8
(KEYSEAL_TMK_CACHE_TTL, KEYSEAL_SESSION_TTL, KEYSEAL_POLL_INTERVAL, ...);
these flags default to KEYSEAL_ADDR, KEYSEAL_DATA_DIR and KEYSEAL_MODE.
-clouds (KEYSEAL_DEV_CLOUDS=1) adds the gcp-kms and azure-kv providers on
in-process GCP Cloud KMS and Azure Key Vault stand-ins. The address must be
a loopback one (POST /dev/admin-token mints admin tokens
without authentication) unless KEYSEAL_DEV_ALLOW_REMOTE=1.

`)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", envOr("KEYSEAL_ADDR", "127.0.0.1:8080"), "listen address")
	dataDir := fs.String("data-dir", envOr("KEYSEAL_DATA_DIR", ".keyseal"), "data directory (store, keys, dev-credentials.json)")
	mode := fs.String("mode", envOr("KEYSEAL_MODE", localserver.ModeDev), "dev or localstack")
	clouds := fs.Bool("clouds", false, "run the GCP and Azure KMS stand-ins in process (or KEYSEAL_DEV_CLOUDS=1)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	getenv := os.Getenv
	if *clouds {
		getenv = func(k string) string {
			if k == "KEYSEAL_DEV_CLOUDS" {
				return "1"
			}
			return os.Getenv(k)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, getenv, *mode, *addr, *dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "localserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, mode, addr, dataDir string) error {
	a, l, err := localserver.Wire(ctx, getenv, mode, dataDir)
	if err != nil {
		return err
	}
	defer a.Close()
	allowRemote, err := localserver.AllowRemote(os.Getenv)
	if err != nil {
		return err
	}
	s, err := localserver.Start(ctx, a, l, localserver.Options{Addr: addr, DataDir: dataDir, AllowRemote: allowRemote})
	if err != nil {
		return err
	}
	if mode == localserver.ModeLocalStack {
		// Webhooks as on AWS: bus rule -> SQS -> the webhook-deliver
		// handler (in process) -> DLQ.
		d, err := localserver.StartSQSDelivery(ctx, a, l)
		if err != nil {
			s.Close()
			return err
		}
		defer d.Stop()
		fmt.Fprintf(os.Stderr, "webhook delivery: %s (dead letters: %s)\n", d.QueueURL, d.DLQURL)
		// Push sealing as on AWS: the key-events rules on the bus -> SQS
		// (in place of the Lambda target) -> the key-events handler.
		k, err := localserver.StartSQSKeyEvents(ctx, s)
		if err != nil {
			s.Close()
			return err
		}
		defer k.Stop()
		fmt.Fprintf(os.Stderr, "key events: %s\n", k.QueueURL)
	}
	c := filepath.Join(dataDir, "dev-credentials.json")
	fmt.Fprintf(os.Stderr, `keyseal (%s mode) listening on %s
credentials: %s (tenant %s)
next:
  curl -fsS -XPOST %s/agent/v1/session -H "Authorization: Bearer $(jq -r .agent_key %s)"
`, mode, s.URL, c, s.Credentials.TenantID, s.URL, c)
	if s.Local.LocalKMS != nil {
		fmt.Fprintf(os.Stderr, "  curl -fsS -XPOST %s/dev/kms/keys/%s/state -d '{\"state\":\"disabled\"}'   # pull the plug; the tenant seals within one poll\n",
			s.URL, s.Credentials.KMSKeyID)
	}
	if s.Local.Clouds != nil {
		fmt.Fprintf(os.Stderr, "  gcp-kms key %s, azure-kv key %s (README.md, section \"make run-clouds\")\n",
			s.Credentials.GCPKeyName, s.Credentials.AzureKeyURL)
	}
	fmt.Fprintln(os.Stderr, "  README.md, section \"Try it\", walks the whole kill switch")
	<-ctx.Done()
	return s.Close()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
