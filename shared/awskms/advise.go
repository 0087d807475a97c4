package awskms

import (
	"strings"

	"github.com/keyseal/keyseal/shared/keyseal"
)

var _ keyseal.Advisor = (*Provider)(nil)

// Advise implements keyseal.Advisor with the AWS CLI commands of seed
// 004's troubleshooting, filled in with the key ARN and its region (a
// cross-region key is reached where it lives).
func (p *Provider) Advise(key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy {
	return Remedies(key, f.Problem)
}

// Remedies are the AWS CLI steps that fix problem on key (nil for a
// problem without any), in order.
func Remedies(key keyseal.KeyRef, problem string) []keyseal.Remedy {
	cli := cliArgs(key.KeyID)
	enable := keyseal.Remedy{Action: "enable-key", Command: "aws kms enable-key " + cli}
	verify := keyseal.Remedy{Action: "verify", Command: "aws kms describe-key " + cli + " --query KeyMetadata.KeyState --output text"}
	describe := keyseal.Remedy{Action: "describe-key", Command: "aws kms describe-key " + cli}
	region := ""
	if i := strings.Index(cli, " --region "); i >= 0 {
		region = cli[i:]
	}
	quota := keyseal.Remedy{Action: "check-kms-quota", Command: "aws service-quotas get-service-quota --service-code kms --quota-code L-6E65D7BB" + region}
	switch problem {
	case keyseal.ReasonKeyDisabled:
		return []keyseal.Remedy{enable, verify}
	case keyseal.ReasonPendingDeletion:
		return []keyseal.Remedy{{Action: "cancel-key-deletion", Command: "aws kms cancel-key-deletion " + cli}, enable, verify}
	case keyseal.ReasonAccessDenied:
		return keyPolicyRemedies(key, cli)
	case keyseal.ReasonKeyNotFound, keyseal.ReasonInvalidBlob:
		return []keyseal.Remedy{describe}
	case keyseal.ReasonUnreachable:
		return []keyseal.Remedy{quota, verify}
	case keyseal.ProblemSlow:
		return []keyseal.Remedy{quota}
	}
	return nil
}

// cliArgs are the AWS CLI's key arguments: the key ARN and, when the ARN
// names one, its region.
func cliArgs(keyID string) string {
	cli := "--key-id " + keyID
	if parts := strings.SplitN(keyID, ":", 5); len(parts) == 5 && parts[0] == "arn" && parts[3] != "" {
		cli += " --region " + parts[3]
	}
	return cli
}

// keyPolicyRemedies is the re-apply of seed 004: the statements keyseal
// needs (GET /admin/tenant-kms/key-policy) merged into the key's policy,
// and the trust policy of the role keyseal assumes, when it assumes one.
func keyPolicyRemedies(key keyseal.KeyRef, cli string) []keyseal.Remedy {
	r := []keyseal.Remedy{
		{Action: "get-key-policy", Command: "aws kms get-key-policy " + cli + " --policy-name default --output text > key-policy.json"},
		{Action: "re-apply-key-policy", Command: "add the statement of GET /admin/tenant-kms/key-policy to key-policy.json, then: aws kms put-key-policy " + cli +
			" --policy-name default --policy file://key-policy.json"},
	}
	if role := key.Access[AccessRoleARN]; role != "" {
		name := role[strings.LastIndex(role, "/")+1:]
		r = append(r, keyseal.Remedy{Action: "check-role", Command: "aws iam get-role --role-name " + name +
			" --query Role.AssumeRolePolicyDocument (keyseal assumes " + role + " with its external id)"})
	}
	return r
}
