// Command faultproxy runs keyseal's fault-injecting KMS proxy on its own, for
// manual drills: point keyseal's KMS endpoint (AWS_ENDPOINT_URL_KMS) at it,
// then deny, drop, fail or delay chosen keys while watching keyseal seal and
// unseal.
//
//	go run ./localstack/cmd/faultproxy --listen 127.0.0.1:4577 --upstream http://127.0.0.1:4566
//	curl -X POST localhost:4577/_faultproxy/rules -d '{"match":"<key id>","fault":"deny"}'
//	curl -X POST localhost:4577/_faultproxy/rules -d '{"match":"*","delay":"2s"}'
//	curl -X DELETE localhost:4577/_faultproxy/rules
//
// Every other request is forwarded to the upstream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyseal/keyseal/localstack/faultproxy"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2) // the flag package has printed the problem and the usage
	default:
		fmt.Fprintln(os.Stderr, err) // the proxy's errors start with "faultproxy:"
		os.Exit(1)
	}
}

// errUsage reports command-line arguments run could not use.
var errUsage = errors.New("usage")

// run parses args, serves until SIGINT or SIGTERM, then closes the proxy.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("faultproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4577", "loopback `address` to listen on")
	upstream := fs.String("upstream", "http://127.0.0.1:4566", "KMS endpoint `URL` to forward to (LocalStack)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: faultproxy [--listen ADDR] [--upstream URL]

A KMS proxy that injects the failures LocalStack cannot produce. Rules:
  POST   %[1]s  {"match": "<key id, ARN or *>", "fault": "deny|drop|error|", "delay": "2s"}
  DELETE %[1]s  clear every rule
"fault" and "delay" are each optional (at least one is needed); "fault": ""
forwards, "delay": "0s" removes a delay. The most recently set matching rule
wins. Every other request is forwarded to the upstream.

Flags:
`, faultproxy.ControlPath)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "faultproxy: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return errUsage
	}

	p, err := faultproxy.New(*upstream)
	if err != nil {
		return err
	}
	base, err := p.Start(*listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "faultproxy: %s -> %s (rules: POST/DELETE %s%s)\n", base, *upstream, base, faultproxy.ControlPath)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintf(stdout, "faultproxy: stopping after %d requests\n", p.Requests())
	return p.Close()
}
