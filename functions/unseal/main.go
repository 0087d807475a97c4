// Command unseal is the unseal Lambda: POST /admin/tenant-kms/unseal.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
)

func main() {
	a := app.MustAWS("unseal", app.Needs{Admin: true, Audit: true, Clouds: clouds.FromConfig})
	lambda.Start(api.NewRouter(a.Log, a.Deps.UnsealRoutes()).Handle)
}
