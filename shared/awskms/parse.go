package awskms

import (
	"slices"
	"strings"

	"github.com/keyseal/keyseal/shared/internal/lazyre"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Access fields of an aws-kms KeyRef: the customer's role keyseal assumes,
// and the ExternalId it must present.
const (
	AccessRoleARN    = "role_arn"
	AccessExternalID = "external_id"
)

// ExpectedKeyARN is the form ParseKey accepts, quoted in its errors.
const ExpectedKeyARN = "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID"

var (
	keyARNPattern   = lazyre.New(`^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
	aliasARNPattern = lazyre.New(`^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:alias/`)
	roleARNPattern  = lazyre.New(`^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDRe    = lazyre.New(`^[\w+=,.@:/-]+$`)
)

// fields are the registration fields aws-kms takes.
var fields = []string{"key_arn", AccessRoleARN, AccessExternalID}

// ParseKey implements keyseal.Provider (seed 004's registration checks):
// EKEYARN for a malformed or alias ARN, EINVALID for the other fields.
// Multi-region (mrk-) keys and keys in any region are accepted. A role is
// accepted only with an external id: the stack lets keyseal assume a
// customer role only when it presents one (the confused-deputy guard).
func (p *Provider) ParseKey(in map[string]string) (keyseal.KeyRef, error) {
	for name := range in {
		if !slices.Contains(fields, name) {
			return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "provider aws-kms does not take %s (it takes %s)", name, strings.Join(fields, ", "))
		}
	}
	arn, role, ext := in["key_arn"], in[AccessRoleARN], in[AccessExternalID]
	switch {
	case arn == "":
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "key_arn is required for provider aws-kms")
	case aliasARNPattern.MatchString(arn):
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EKEYARN, "alias ARNs are not accepted: use the key ARN (%s); `aws kms describe-key --key-id alias/NAME --query KeyMetadata.Arn` prints it", ExpectedKeyARN).
			With("expected_format", ExpectedKeyARN)
	case !keyARNPattern.MatchString(arn):
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EKEYARN, "key_arn must be a KMS key ARN of the form %s (KEY_ID a UUID or mrk-...)", ExpectedKeyARN).
			With("expected_format", ExpectedKeyARN)
	case role != "" && !roleARNPattern.MatchString(role):
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "role_arn must be an IAM role ARN of the form arn:aws:iam::ACCOUNT:role/NAME")
	case ext != "" && role == "":
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "external_id needs role_arn")
	case role != "" && ext == "":
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "role_arn needs external_id: keyseal assumes a customer role only with an ExternalId; put the same value in the role's trust policy (sts:ExternalId condition)")
	case ext != "" && (len(ext) < 2 || len(ext) > 1224 || !externalIDRe.MatchString(ext)):
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "external_id must be 2-1224 characters of letters, digits and +=,.@:/-")
	}
	k := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: arn}
	if role != "" {
		k.Access = map[string]string{AccessRoleARN: role, AccessExternalID: ext}
	}
	return k, nil
}
