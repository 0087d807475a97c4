//go:build integration

package awskms_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/kmstest"
)

// TestConformanceOnLocalStack runs the KMS suite on LocalStack's KMS: key
// states through the KMS API itself, access denied and partitions through
// the fault proxy (LocalStack enforces no IAM and cannot cut the network).
func TestConformanceOnLocalStack(t *testing.T) {
	upstream := os.Getenv("AWS_ENDPOINT_URL")
	if upstream == "" {
		t.Fatal("AWS_ENDPOINT_URL is unset: run with `make test` (or eval \"$(bash scripts/standins.sh env)\")")
	}
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(upstream) })
	proxy, err := faultproxy.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, err := proxy.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := awskms.New(kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(proxyURL)
		o.RetryMaxAttempts = 1
	}))

	kmstest.Run(t, kmstest.Harness{
		New: func(t *testing.T) (keyseal.KMS, keyseal.KeyRef) {
			out, err := admin.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kmstest")})
			if err != nil {
				t.Fatal(err)
			}
			return p, keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: aws.ToString(out.KeyMetadata.Arn)}
		},
		Missing: func(t *testing.T) keyseal.KeyRef {
			return keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000"}
		},
		SetState: func(t *testing.T, key keyseal.KeyRef, state string) bool {
			id := aws.String(key.KeyID)
			var err error
			switch state {
			case kmstest.Enabled:
				proxy.Clear()
				if d, derr := admin.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id}); derr == nil && d.KeyMetadata.KeyState == "PendingDeletion" {
					_, err = admin.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: id})
				}
				if err == nil {
					_, err = admin.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id})
				}
			case kmstest.Disabled:
				_, err = admin.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
			case kmstest.PendingDeletion:
				_, err = admin.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
			case kmstest.AccessDenied:
				proxy.Set(key.KeyID, faultproxy.Deny)
			case kmstest.Unreachable:
				proxy.Set(key.KeyID, faultproxy.Drop)
			default:
				return false
			}
			if err != nil {
				t.Fatal(err)
			}
			return true
		},
	})
}
