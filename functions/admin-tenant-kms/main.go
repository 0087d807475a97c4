// Command admin-tenant-kms is the admin Lambda: tenant KMS config, step-up,
// agents and the audit chain.
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
		fmt.Fprintln(os.Stderr, "admin-tenant-kms:", err)
		os.Exit(1)
	}
	lambda.Start(api.NewRouter(a.Log, api.AdminRoutes(a.Deps)).Handle)
}
