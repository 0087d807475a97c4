// Command health is the health Lambda: GET /health.
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
	a, err := app.NewAWS(context.Background(), os.Getenv, app.Needs{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "health:", err)
		os.Exit(1)
	}
	lambda.Start(api.NewRouter(a.Log, api.HealthRoutes(a.Deps)).Handle)
}
