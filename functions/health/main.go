// Command health is the health Lambda: GET /health.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
)

func main() {
	a := app.MustAWS("health", app.Needs{})
	lambda.Start(api.NewRouter(a.Log, a.Deps.HealthRoutes()).Handle)
}
