// Package secretvalue reads a Secrets Manager secret's current string:
// keyseal's one Secrets Manager call (GetSecretValue of the Azure client
// secret, at start and when Entra refuses it).
//
// It sends the AWS JSON 1.1 request itself (POST / with X-Amz-Target:
// secretsmanager.GetSecretValue and {"SecretId": ...}) on package awsreq
// instead of using the SDK's Secrets Manager client: that client's
// packages (its schemas and endpoint rules) cost every Lambda serving
// Azure tenants about 0.17 ms of package init and its binary size on
// every cold start, for one call whose request and answer fit in this
// file. The endpoint is the SDK client's (the service "Secrets Manager":
// AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL, else
// https://secretsmanager.{region}.amazonaws.com).
//
// A read that got no answer, a throttle or a server error is retried
// once after 100-300 ms (awsreq.Retryable): a read is safe to repeat,
// and a start that fails on one lost request costs a cold start again.
//
// The secret's value is never logged nor put in an error: errors name
// the secret's id, the status and Secrets Manager's error code and
// message only.
package secretvalue

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyseal/keyseal/shared/awsconfig/awsreq"
)

// service is Secrets Manager as the SDK knows it.
var service = awsreq.Service{ID: "Secrets Manager", EndpointPrefix: "secretsmanager", SigningName: "secretsmanager"}

// Client reads secrets with one aws.Config's credentials and endpoint.
type Client struct {
	client *awsreq.Client
}

// New returns a client with cfg's credentials, region, HTTP client (a
// plain http.Client when it has none) and endpoint (see the package
// comment).
func New(cfg aws.Config) *Client {
	return &Client{client: awsreq.New(cfg, service)}
}

// GetSecretString returns the SecretString of secretID's AWSCURRENT
// version (secretID is the secret's ARN or name). Secrets Manager's
// refusal is an *awsreq.Error (ResourceNotFoundException,
// AccessDeniedException, DecryptionFailure) wrapped with the secret's id;
// a secret with only a SecretBinary is an error too.
func (c *Client) GetSecretString(ctx context.Context, secretID string) (string, error) {
	s, err := c.get(ctx, secretID)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", secretID, err)
	}
	return s, nil
}

// get reads the secret string from GetSecretValue's answer; a request
// without an answer, a throttle or a server error is sent once more (a
// 2xx it cannot read is not: the same answer would come again).
func (c *Client) get(ctx context.Context, secretID string) (string, error) {
	in, err := json.Marshal(struct{ SecretId string }{secretID})
	if err != nil {
		return "", err
	}
	req := awsreq.Request{
		Operation: "GetSecretValue",
		Method:    http.MethodPost,
		Path:      "/",
		Header:    http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {"secretsmanager.GetSecretValue"}},
		Body:      in,
	}
	resp, err := c.client.DoRetryOnce(ctx, req)
	if err != nil {
		return "", err
	}
	var out struct {
		SecretString *string
	}
	// json's errors can quote the body, the secret: say only what failed.
	if json.Unmarshal(resp.Body, &out) != nil {
		return "", fmt.Errorf("%s GetSecretValue: the answer (status %d, %d bytes) is not the JSON of a secret value", service.ID, resp.StatusCode, len(resp.Body))
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("%s GetSecretValue: the secret has no SecretString (a binary secret?): want the value stored as a string", service.ID)
	}
	return *out.SecretString, nil
}
