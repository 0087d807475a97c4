//go:build integration

package awskms_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/awskms/roles"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/kmstest"
)

// TestConformanceOnLocalStack runs the KMS suite on LocalStack's KMS: key
// states through the KMS API itself, access denied and partitions through
// the fault proxy (LocalStack enforces no IAM and cannot cut the network).
func TestConformanceOnLocalStack(t *testing.T) {
	upstream := standin.LocalStack(t)
	ctx := context.Background()
	admin := standin.KMS(t)
	proxy, err := faultproxy.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, err := proxy.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := awskms.New(standin.KMS(t, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(proxyURL)
		o.RetryMaxAttempts = 1
	}))

	kmstest.Run(t, kmstest.Harness{
		Fields: func(key keyseal.KeyRef) map[string]string { return map[string]string{"key_arn": key.KeyID} },
		New: func(t *testing.T) (keyseal.Provider, keyseal.KeyRef) {
			return p, newKey(t, admin)
		},
		SetState: func(t *testing.T, key keyseal.KeyRef, state string) bool {
			id := aws.String(key.KeyID)
			var err error
			switch state {
			case kmstest.Enabled:
				proxy.Set(key.KeyID, faultproxy.Pass)
				var d *kms.DescribeKeyOutput
				d, err = admin.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
				if err == nil && d.KeyMetadata.KeyState == types.KeyStatePendingDeletion {
					// Cancelling leaves the key disabled.
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

// newKey creates a symmetric key on LocalStack, scheduled for deletion when
// the test ends so repeated runs do not pile up enabled keys.
func newKey(t *testing.T, admin *kms.Client) keyseal.KeyRef {
	t.Helper()
	out, err := admin.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("keyseal kmstest")})
	if err != nil {
		t.Fatalf("CreateKey on LocalStack: %v", err)
	}
	t.Cleanup(func() {
		// Already pending deletion after some subtests: that error is fine.
		_, _ = admin.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{
			KeyId: out.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	})
	return keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: aws.ToString(out.KeyMetadata.Arn)}
}

// TestAssumedRoleOnLocalStack goes through roles.Clients with LocalStack's
// STS: the real AssumeRole exchange, then KMS calls signed with the role's
// session credentials. LocalStack enforces no trust policy, so this proves
// the plumbing, not a refusal (TestRefusedRoleIsTerminal covers that).
func TestAssumedRoleOnLocalStack(t *testing.T) {
	ctx := context.Background()
	admin := standin.KMS(t)
	p := awskms.New(admin, awskms.WithAssumeRole(roles.Clients(standin.Config(t), standin.STS(t))))
	key := newKey(t, admin)
	// A role in the account LocalStack's default credentials map to, so the
	// session credentials see the same keys.
	key.Access = map[string]string{awskms.AccessRoleARN: "arn:aws:iam::000000000000:role/keyseal-access", awskms.AccessExternalID: "kmstest-external-id"}
	ec := map[string]string{"keyseal:tenant": "acme"}
	blob, err := p.Wrap(ctx, key, []byte("tenant master key"), ec)
	if err != nil {
		t.Fatalf("wrap through the assumed role: %v", err)
	}
	got, err := p.Unwrap(ctx, key, blob, ec)
	if err != nil || string(got) != "tenant master key" {
		t.Fatalf("unwrap through the assumed role: %q %v", got, err)
	}

	// The calls really carry the role's session: LocalStack places a role
	// of another account in that account, where a bare key ID (unlike an
	// ARN, which names its account) finds no key.
	key.KeyID = key.KeyID[strings.LastIndexByte(key.KeyID, '/')+1:]
	if _, err := p.Unwrap(ctx, key, blob, ec); err != nil {
		t.Fatalf("unwrap by bare key ID through the key account's role: %v", err)
	}
	key.Access = map[string]string{awskms.AccessRoleARN: "arn:aws:iam::111111111111:role/keyseal-access", awskms.AccessExternalID: "kmstest-external-id"}
	_, err = p.Unwrap(ctx, key, blob, ec)
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || !ke.Terminal {
		t.Fatalf("a role in another account reached the key: %v", err)
	}
	t.Logf("through another account's role: %v", ke)
}
