// Command session-issue is the session Lambda: POST /agent/v1/session and
// GET /agent/v1/jwks/{tenant_id}.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
)

func main() {
	a := app.MustAWS("session-issue", app.Needs{Audit: true, Clouds: clouds.FromConfig})
	lambda.Start(api.NewRouter(a.Log, a.Deps.SessionRoutes()).Handle)
}
