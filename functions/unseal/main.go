// Command unseal is the unseal Lambda: POST /admin/tenant-kms/unseal.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
)

func main() {
	a, err := app.NewAWS(context.Background(), os.Getenv, app.Needs{Admin: true, Events: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "unseal:", err)
		os.Exit(1)
	}
	lambda.Start(api.NewRouter(a.Log, api.UnsealRoutes(a.Deps)).Handle)
}
