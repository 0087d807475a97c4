// Command infra is keyseal's CDK app: one stack per environment, chosen
// with `-c env=dev|staging|prod` (default dev), settings from the
// "keyseal:environments" context in cdk.json. `make synth ENV=...` runs it.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyseal/keyseal/infra/stack"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	env, _ := app.Node().TryGetContext(jsii.String(stack.EnvKey)).(string)
	if env == "" {
		env = "dev"
	}
	assetDir, _ := app.Node().TryGetContext(jsii.String(stack.AssetDirKey)).(string)
	if assetDir == "" {
		assetDir = "../bin" // the app runs in infra/; make build writes bin/ at the repo root
	}
	cfg, err := stack.LoadConfig(app.Node().TryGetContext(jsii.String(stack.ContextKey)), env, assetDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
	stack.New(app, cfg)
	app.Synth(nil)
}
