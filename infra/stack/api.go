package stack

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Route is one API route and the Lambda that serves it.
type Route struct {
	Method, Path, Function string
}

// Routes are the routes of SPEC §3 that keyseal serves today, each wired
// to the Lambda whose router handles it (shared/api: SessionRoutes,
// AdminRoutes, UnsealRoutes, HealthRoutes). API Gateway sends everything
// else to no Lambda at all (403 from API Gateway), so a route exists only
// where a handler does.
var Routes = []Route{
	{"POST", "/agent/v1/session", FnSession},
	{"GET", "/agent/v1/jwks/{tenant_id}", FnSession},
	{"GET", "/health", FnHealth},
	{"GET", "/admin/tenant-kms", FnAdmin},
	{"PUT", "/admin/tenant-kms", FnAdmin},
	{"DELETE", "/admin/tenant-kms", FnAdmin},
	{"POST", "/admin/tenant-kms/unseal", FnUnseal},
	{"POST", "/admin/auth/step-up", FnAdmin},
	{"POST", "/admin/agents", FnAdmin},
	{"GET", "/admin/agents", FnAdmin},
	{"DELETE", "/admin/agents/{id}", FnAdmin},
	{"GET", "/admin/audit", FnAdmin},
	{"GET", "/admin/audit/verify", FnAdmin},
}

// API is the REST API (v1: LocalStack Community has no HTTP API) in front
// of the Lambdas, with stage throttling and JSON access logs.
type API struct {
	constructs.Construct
	Rest awsapigateway.RestApi
}

// NewAPI creates the API and wires every route in Routes with a Lambda
// proxy integration.
func NewAPI(scope constructs.Construct, id string, c Config, fns *Functions) *API {
	s := constructs.NewConstruct(scope, jsii.String(id))
	access := awslogs.NewLogGroup(s, jsii.String("AccessLogs"), &awslogs.LogGroupProps{
		LogGroupName: jsii.String("/keyseal/" + c.Name + "/api-access"), Retention: c.Retention(), RemovalPolicy: c.RemovalPolicy(),
	})
	rest := awsapigateway.NewRestApi(s, jsii.String("Rest"), &awsapigateway.RestApiProps{
		RestApiName: jsii.String(c.Prefix("api")),
		Description: jsii.String("keyseal " + c.Name + ": agent session API and admin API"),
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            jsii.String(c.Name),
			ThrottlingRateLimit:  jsii.Number(c.ThrottleRate),
			ThrottlingBurstLimit: jsii.Number(c.ThrottleBurst),
			TracingEnabled:       jsii.Bool(true),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(access),
			AccessLogFormat: awsapigateway.AccessLogFormat_JsonWithStandardFields(&awsapigateway.JsonWithStandardFieldProps{
				Caller: jsii.Bool(false), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(false),
			}),
		},
		CloudWatchRole: jsii.Bool(true),
	})
	integrations := map[string]awsapigateway.LambdaIntegration{}
	for _, r := range Routes {
		in, ok := integrations[r.Function]
		if !ok {
			in = awsapigateway.NewLambdaIntegration(fns.ByName[r.Function], &awsapigateway.LambdaIntegrationOptions{Proxy: jsii.Bool(true)})
			integrations[r.Function] = in
		}
		resource := rest.Root().ResourceForPath(jsii.String(strings.TrimPrefix(r.Path, "/")))
		resource.AddMethod(jsii.String(r.Method), in, nil)
	}
	return &API{Construct: s, Rest: rest}
}
