// Command session-issue is the session Lambda: POST /agent/v1/session and
// GET /agent/v1/jwks/{tenant_id}.
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
	a, err := app.NewAWS(context.Background(), os.Getenv, app.Needs{Events: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "session-issue:", err)
		os.Exit(1)
	}
	lambda.Start(api.NewRouter(a.Log, api.SessionRoutes(a.Deps)).Handle)
}
