//go:build integration

package suite

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/api/openapitest"
)

// TestMain puts the OpenAPI validator in front of http.DefaultClient, so
// every answer the suite gets in LocalStack mode (the DynamoDB store, the
// AWS KMS provider) must be as openapi.json documents it. Benchmarks (the
// drills) run without it: they time the answers.
func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.bench").Value.String() == "" {
		v, err := openapitest.New(api.OpenAPIDocument())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		http.DefaultClient.Transport = &openapitest.Transport{Validators: []*openapitest.Validator{v}}
	}
	os.Exit(m.Run())
}
