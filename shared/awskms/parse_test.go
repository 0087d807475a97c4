package awskms_test

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func TestParseKey(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	const role = "arn:aws:iam::123456789012:role/KeysealKMSAccess"
	tests := []struct {
		name   string
		fields map[string]string
		want   string // error code; "" for success
		// msg, when set, must appear in the error message.
		msg string
	}{
		{"key ARN", map[string]string{"key_arn": arn}, "", ""},
		{"multi-region key", map[string]string{"key_arn": "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"}, "", ""},
		{"gov partition", map[string]string{"key_arn": "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, "", ""},
		{"alias ARN", map[string]string{"key_arn": "arn:aws:kms:us-east-1:123456789012:alias/mine"}, keyseal.EKEYARN, "describe-key --key-id alias/NAME --query KeyMetadata.Arn"},
		{"bare key id", map[string]string{"key_arn": "1234abcd-12ab-34cd-56ef-1234567890ab"}, keyseal.EKEYARN, awskms.ExpectedKeyARN},
		{"short account", map[string]string{"key_arn": "arn:aws:kms:us-east-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, keyseal.EKEYARN, ""},
		{"missing", map[string]string{}, keyseal.EINVALID, "key_arn is required"},
		{"role and external id", map[string]string{"key_arn": arn, "role_arn": role, "external_id": "ext-123"}, "", ""},
		{"bad role ARN", map[string]string{"key_arn": arn, "role_arn": "role/x", "external_id": "ext-123"}, keyseal.EINVALID, "role_arn"},
		{"external id without role", map[string]string{"key_arn": arn, "external_id": "ext-123"}, keyseal.EINVALID, "needs role_arn"},
		{"role without external id", map[string]string{"key_arn": arn, "role_arn": role}, keyseal.EINVALID, "role_arn needs external_id"},
		{"short external id", map[string]string{"key_arn": arn, "role_arn": role, "external_id": "x"}, keyseal.EINVALID, "external_id"},
		{"long external id", map[string]string{"key_arn": arn, "role_arn": role, "external_id": strings.Repeat("a", 1225)}, keyseal.EINVALID, "external_id"},
		{"GCP field", map[string]string{"key_name": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}, keyseal.EINVALID, "does not take key_name"},
		{"local field", map[string]string{"key_id": "local-1"}, keyseal.EINVALID, "does not take key_id"},
	}
	p := awskms.New(nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := p.ParseKey(tc.fields)
			if got := keyseal.ErrorCode(err); got != tc.want {
				t.Fatalf("ParseKey = %q (%v), want %q", got, err, tc.want)
			}
			if tc.msg != "" && !strings.Contains(keyseal.ErrorMessage(err), tc.msg) {
				t.Fatalf("message %q does not say %q", keyseal.ErrorMessage(err), tc.msg)
			}
			if err != nil {
				return
			}
			if k.Provider != keyseal.ProviderAWS || k.KeyID != tc.fields["key_arn"] || k.Access[awskms.AccessRoleARN] != tc.fields["role_arn"] ||
				k.Access[awskms.AccessExternalID] != tc.fields["external_id"] {
				t.Fatalf("ParseKey = %+v for %v", k, tc.fields)
			}
			if tc.fields["role_arn"] == "" && k.Access != nil {
				t.Fatalf("a key reached as keyseal itself has access fields: %v", k.Access)
			}
		})
	}
}
