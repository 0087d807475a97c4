// Command health is the health Lambda: GET /health (liveness) and GET
// /admin/tenant-kms/health (the live BYOK probe, admin).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
)

func main() {
	a := app.MustAWS("health", app.Needs{Admin: true, Clouds: clouds.FromConfig})
	lambda.Start(api.NewRouter(a.Log, a.Deps.HealthRoutes()).Handle)
}
