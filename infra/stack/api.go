package stack

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// API is the REST API (v1: LocalStack Community has no HTTP API) in front
// of the Lambdas, with stage throttling and JSON access logs.
type API struct {
	constructs.Construct
	Rest awsapigateway.RestApi
}

// NewAPI creates the API and wires each of routes, and each of its
// aliases, to its Lambda with a proxy integration (one integration per
// Lambda). The stack passes Routes; tests pass tables of their own.
func NewAPI(scope constructs.Construct, id string, c Config, fns *Functions, routes []Route) *API {
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
	for _, r := range routes {
		in, ok := integrations[r.Function]
		if !ok {
			fn, found := fns.ByName[r.Function]
			if !found {
				panic("api: route " + r.Method + " " + r.Path + ": no function " + r.Function)
			}
			in = awsapigateway.NewLambdaIntegration(fn, &awsapigateway.LambdaIntegrationOptions{Proxy: jsii.Bool(true)})
			integrations[r.Function] = in
		}
		pairs := append([]Alias{{Method: r.Method, Path: r.Path}}, r.Aliases...)
		for _, p := range pairs {
			if IsSlashAlias(r, p) {
				continue // served by r's own resource
			}
			resource := rest.Root().ResourceForPath(jsii.String(strings.TrimPrefix(p.Path, "/")))
			resource.AddMethod(jsii.String(p.Method), in, nil)
		}
	}
	return &API{Construct: s, Rest: rest}
}
