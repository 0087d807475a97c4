// Command keyseal is the admin CLI of a keyseal deployment (shared/cli):
//
//	go install github.com/keyseal/keyseal/scripts/keyseal@latest
//	keyseal login --dev && keyseal status
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyseal/keyseal/shared/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
