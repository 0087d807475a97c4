package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func loadEvent(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

type echoIn struct {
	Name string `json:"name"`
}

func testRouter() *api.Router {
	return api.NewRouter(discard(), []api.Route{
		{Method: http.MethodPost, Path: "/agent/v1/echo", Handler: func(_ context.Context, r *api.Request) (api.Response, error) {
			var in echoIn
			if err := api.Decode(r, &in, false); err != nil {
				return api.Response{}, err
			}
			return api.JSON(200, in), nil
		}},
		{Method: http.MethodPut, Path: "/admin/things/{id}", Handler: func(_ context.Context, r *api.Request) (api.Response, error) {
			var in echoIn
			if err := api.Decode(r, &in, true); err != nil {
				return api.Response{}, err
			}
			return api.JSON(200, map[string]string{"id": r.Params["id"], "name": in.Name, "auth": r.Header("AUTHORIZATION")}), nil
		}},
		{Method: http.MethodGet, Path: "/admin/boom", Handler: func(context.Context, *api.Request) (api.Response, error) {
			panic("secret detail")
		}},
		{Method: http.MethodGet, Path: "/admin/fail", Handler: func(context.Context, *api.Request) (api.Response, error) {
			return api.Response{}, io.ErrUnexpectedEOF // an internal error
		}},
		{Method: http.MethodPost, Path: "/admin/weak", Handler: func(context.Context, *api.Request) (api.Response, error) {
			return api.Response{}, keyseal.Errorf(keyseal.EINSUFFICIENT, "sign in again").With(auth.ExtraACRValues, "mfa phr").With(auth.ExtraMaxAge, int64(300))
		}},
		{Method: http.MethodGet, Path: "/admin/store-down", Handler: storeDown},
		{Method: http.MethodGet, Path: "/agent/v1/store-down", Handler: storeDown},
		{Method: http.MethodGet, Path: "/admin/unseal-failed", Handler: func(context.Context, *api.Request) (api.Response, error) {
			return api.Response{}, keyseal.Errorf(keyseal.EUNSEALFAILED, "still failing").With("reason", "access_denied")
		}},
	})
}

func call(t *testing.T, rt *api.Router, method, path, body string) (int, map[string]any, map[string]string) {
	t.Helper()
	resp, err := rt.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body,
		Headers: map[string]string{"authorization": "Bearer x"}})
	if err != nil {
		t.Fatalf("Handle returned a Go error: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", resp.Body, err)
	}
	return resp.StatusCode, m, resp.Headers
}

func TestRouterErrors(t *testing.T) {
	rt := testRouter()
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown route", "GET", "/nope", "", 404, keyseal.ENOTFOUND},
		{"leading double slash", "PUT", "//admin/things/1", "", 404, keyseal.ENOTFOUND},
		{"trailing slash", "PUT", "/admin/things/1/", "", 404, keyseal.ENOTFOUND},
		{"inner double slash", "PUT", "/admin//things/1", "", 404, keyseal.ENOTFOUND},
		{"no leading slash", "PUT", "admin/things/1", "", 404, keyseal.ENOTFOUND},
		{"empty path parameter", "PUT", "/admin/things/", "", 404, keyseal.ENOTFOUND},
		{"invalid UTF-8 in a path parameter", "PUT", "/admin/things/\xff", "", 400, keyseal.EINVALID},
		{"wrong method", "DELETE", "/admin/things/1", "", 405, keyseal.EMETHOD},
		{"malformed JSON", "PUT", "/admin/things/1", `{"name":`, 400, keyseal.EINVALID},
		{"unknown field", "PUT", "/admin/things/1", `{"name":"a","extra":1}`, 400, keyseal.EINVALID},
		{"wrong type", "PUT", "/admin/things/1", `{"name":5}`, 400, keyseal.EINVALID},
		{"trailing data", "PUT", "/admin/things/1", `{"name":"a"} {}`, 400, keyseal.EINVALID},
		{"oversized body", "PUT", "/admin/things/1", `{"name":"` + strings.Repeat("a", api.MaxBody) + `"}`, 400, keyseal.EINVALID},
		{"panic", "GET", "/admin/boom", "", 500, keyseal.EINTERNAL},
		{"internal error", "GET", "/admin/fail", "", 500, keyseal.EINTERNAL},
		{"extra fields", "GET", "/admin/unseal-failed", "", 502, keyseal.EUNSEALFAILED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := call(t, rt, tc.method, tc.path, tc.body)
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Fatal("error without a message")
			}
			if status >= 500 && tc.code == keyseal.EINTERNAL && body["message"] != "internal error" {
				t.Fatalf("5xx leaks internals: %v", body)
			}
		})
	}
}

func TestRouterAgentErrorShape(t *testing.T) {
	status, body, _ := call(t, testRouter(), "POST", "/agent/v1/echo", `{"bad":1}`)
	inner, ok := body["error"].(map[string]any)
	if status != 400 || !ok || inner["type"] != keyseal.EINVALID || inner["message"] == "" {
		t.Fatalf("agent error = %d %v, want 400 {error:{type,message}}", status, body)
	}
	// Unknown agent routes use the agent shape too.
	_, body, _ = call(t, testRouter(), "GET", "/agent/v1/nope", "")
	if _, ok := body["error"].(map[string]any); !ok {
		t.Fatalf("unknown agent route body = %v, want the agent error shape", body)
	}
}

func TestRouterExtraFieldsAndAllow(t *testing.T) {
	_, body, _ := call(t, testRouter(), "GET", "/admin/unseal-failed", "")
	if body["reason"] != "access_denied" {
		t.Fatalf("unseal_failed body = %v, want reason", body)
	}
	_, _, headers := call(t, testRouter(), "POST", "/admin/things/1", "")
	if headers["Allow"] != "PUT" {
		t.Fatalf("405 Allow = %q, want PUT", headers["Allow"])
	}
}

// TestRouterChallenge: an EINSUFFICIENT error gets the RFC 9470
// WWW-Authenticate challenge built from what step-up requires.
func TestRouterChallenge(t *testing.T) {
	status, body, headers := call(t, testRouter(), "POST", "/admin/weak", "")
	want := `Bearer error="insufficient_user_authentication", error_description="A fresh multi-factor authentication is required", acr_values="mfa phr", max_age=300`
	if status != 401 || body["error"] != keyseal.EINSUFFICIENT || headers["WWW-Authenticate"] != want {
		t.Fatalf("got %d %v, WWW-Authenticate %q; want 401 with\n%s", status, body, headers["WWW-Authenticate"], want)
	}
}

func TestRouterPathParamsAndHeaders(t *testing.T) {
	status, body, _ := call(t, testRouter(), "PUT", "/admin/things/abc", `{"name":"n"}`)
	if status != 200 || body["id"] != "abc" || body["name"] != "n" || body["auth"] != "Bearer x" {
		t.Fatalf("got %d %v", status, body)
	}
}

func TestDecodeBase64Body(t *testing.T) {
	ev := loadEvent(t, "apigw-put-tenant-kms-base64.json")
	var in struct {
		Provider string `json:"provider"`
		KeyARN   string `json:"key_arn"`
	}
	if err := api.Decode(&api.Request{APIGatewayProxyRequest: ev}, &in, false); err != nil {
		t.Fatal(err)
	}
	if in.Provider != "aws-kms" || !strings.Contains(in.KeyARN, ":alias/") {
		t.Fatalf("decoded %+v", in)
	}
}

// TestRouterRefusesInvalidUTF8Query: a query parameter (name or value) that
// is not valid UTF-8 is a 400, never replaced by U+FFFD downstream.
func TestRouterRefusesInvalidUTF8Query(t *testing.T) {
	rt := testRouter()
	for _, ev := range []events.APIGatewayProxyRequest{
		{HTTPMethod: "PUT", Path: "/admin/things/1", QueryStringParameters: map[string]string{"action": "a\xffb"}},
		{HTTPMethod: "PUT", Path: "/admin/things/1", QueryStringParameters: map[string]string{"\xc0": "x"}},
		{HTTPMethod: "PUT", Path: "/admin/things/1", MultiValueQueryStringParameters: map[string][]string{"action": {"ok", "\xff"}}},
	} {
		resp, _ := rt.Handle(context.Background(), ev)
		var body map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &body)
		if resp.StatusCode != 400 || body["error"] != keyseal.EINVALID {
			t.Fatalf("%v: %d %s; want 400 invalid_request", ev.QueryStringParameters, resp.StatusCode, resp.Body)
		}
	}
}

// storeDown fails the way a throttled store does, seen through the adapter.
func storeDown(context.Context, *api.Request) (api.Response, error) {
	return api.Response{}, fmt.Errorf("dynamostore: get tenant: %w", keyseal.Unavailable(errors.New("ThrottlingException: secret-ish detail")))
}

// TestRouterStoreUnavailable: store unavailability is a retryable 503
// with Retry-After in both shapes, never a 500, and the cause stays out of
// the body.
func TestRouterStoreUnavailable(t *testing.T) {
	status, body, headers := call(t, testRouter(), "GET", "/admin/store-down", "")
	if status != 503 || body["error"] != keyseal.EUNAVAILABLE || headers["Retry-After"] == "" {
		t.Fatalf("admin: got %d %v %v, want 503 %s with Retry-After", status, body, headers, keyseal.EUNAVAILABLE)
	}
	status, body, headers = call(t, testRouter(), "GET", "/agent/v1/store-down", "")
	inner, _ := body["error"].(map[string]any)
	if status != 503 || inner["type"] != keyseal.EUNAVAILABLE || headers["Retry-After"] == "" {
		t.Fatalf("agent: got %d %v %v, want 503 %s with Retry-After", status, body, headers, keyseal.EUNAVAILABLE)
	}
	if strings.Contains(fmt.Sprint(body), "secret-ish") {
		t.Fatalf("the cause leaked into the body: %v", body)
	}
}
