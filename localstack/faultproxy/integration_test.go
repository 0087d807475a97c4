//go:build integration

package faultproxy

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyseal/keyseal/localstack/standin"
)

// TestKMSClientThroughProxy drives a real SDK KMS client through the proxy
// to LocalStack: the errors the proxy invents must decode exactly like the
// ones AWS sends, and everything else must pass through untouched.
func TestKMSClientThroughProxy(t *testing.T) {
	p, err := New(standin.LocalStack(t))
	if err != nil {
		t.Fatal(err)
	}
	base, err := p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	client := standin.KMS(t, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(base)
		// One attempt, so each call is one request the proxy counts and a
		// retryable fault surfaces instead of being retried away.
		o.RetryMaxAttempts = 1
	})
	ctx := context.Background()

	newKey := func() *types.KeyMetadata {
		t.Helper()
		out, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("faultproxy integration test")})
		if err != nil {
			t.Fatalf("CreateKey through the proxy: %v", err)
		}
		return out.KeyMetadata
	}
	encrypt := func(keyID string) ([]byte, error) {
		out, err := client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("tenant master key")})
		if err != nil {
			return nil, err
		}
		return out.CiphertextBlob, nil
	}
	denied, other := newKey(), newKey()
	deniedBlob, err := encrypt(aws.ToString(denied.KeyId))
	if err != nil {
		t.Fatalf("Encrypt before any rule: %v", err)
	}

	// Deny by key ID; the client names the key by ARN.
	p.Set(aws.ToString(denied.KeyId), Deny)
	before := p.Requests()
	_, err = encrypt(aws.ToString(denied.Arn))
	wantAPIError(t, err, "AccessDeniedException", 400)
	if n := p.Requests() - before; n != 1 {
		t.Errorf("denied Encrypt made %d requests, want 1", n)
	}
	// A Decrypt that leaves KeyId out is matched by the key in the blob.
	_, err = client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: deniedBlob})
	wantAPIError(t, err, "AccessDeniedException", 400)

	// The other key still works, both ways.
	blob, err := encrypt(aws.ToString(other.KeyId))
	if err != nil {
		t.Fatalf("Encrypt with the other key while one is denied: %v", err)
	}
	plain, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: other.KeyId})
	if err != nil || string(plain.Plaintext) != "tenant master key" {
		t.Fatalf("Decrypt with the other key: %q, %v", plain.Plaintext, err)
	}

	// An outage decodes into the SDK's modelled exception.
	p.Set(aws.ToString(other.KeyId), ServerError)
	_, err = encrypt(aws.ToString(other.KeyId))
	if !errors.As(err, new(*types.KMSInternalException)) {
		t.Fatalf("error fault: got %v, want *types.KMSInternalException", err)
	}

	// A partition is a transport error, not an answer from KMS.
	p.Set(aws.ToString(other.KeyId), Drop)
	_, err = encrypt(aws.ToString(other.KeyId))
	var apiErr smithy.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("drop fault: got %v, want a connection error", err)
	}

	// Clear restores both keys.
	p.Clear()
	for _, k := range []*types.KeyMetadata{denied, other} {
		if _, err := encrypt(aws.ToString(k.KeyId)); err != nil {
			t.Fatalf("Encrypt after Clear: %v", err)
		}
	}

	// LocalStack's own key-state errors pass through unchanged.
	if _, err := client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: denied.KeyId}); err != nil {
		t.Fatal(err)
	}
	_, err = encrypt(aws.ToString(denied.KeyId))
	if !errors.As(err, new(*types.DisabledException)) {
		t.Fatalf("disabled key: got %v, want *types.DisabledException from LocalStack", err)
	}
}

// wantAPIError checks that err is the AWS error code with HTTP status. The
// KMS SDK has no AccessDeniedException type (the KMS model does not list
// it), so callers classify it by code, as keyseal's AWS provider must.
func wantAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("got %v, want API error %s", err, code)
	}
	if apiErr.ErrorMessage() == "" {
		t.Errorf("%s has no message", code)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != status {
		t.Fatalf("got %v, want HTTP status %d", err, status)
	}
}
