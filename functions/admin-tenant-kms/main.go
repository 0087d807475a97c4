// Command admin-tenant-kms is the admin Lambda: tenant KMS config, step-up,
// agents, the audit chain and the event forwarding customers deploy.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
)

func main() {
	a := app.MustAWS("admin-tenant-kms", app.Needs{Admin: true, Audit: true, EventForwarding: true, Clouds: clouds.FromConfig})
	lambda.Start(api.NewRouter(a.Log, a.Deps.AdminRoutes()).Handle)
}
