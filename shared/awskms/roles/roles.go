// Package roles builds the KMS clients of customer roles (sts:AssumeRole)
// for awskms.WithAssumeRole. It is apart from package awskms so that a
// Lambda calling only keyseal's own keys (webhook-deliver) links no STS
// client: its endpoint table and schemas cost every cold start.
package roles

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/shared/awskms"
)

// Clients returns a clientFor for awskms.WithAssumeRole that builds one KMS client per role and
// external id, with credentials from sts:AssumeRole (session name
// "keyseal", cached and refreshed before they expire) and everything else
// (region, endpoint, retries, HTTP client) from cfg. Clients are kept, so a
// verify sweep assumes each customer role once per credential lifetime, not
// once per call; there is one small entry per registered role.
func Clients(cfg aws.Config, stsClient stscreds.AssumeRoleAPIClient) func(roleARN, externalID string) awskms.API {
	var mu sync.Mutex
	clients := map[[2]string]awskms.API{}
	return func(roleARN, externalID string) awskms.API {
		mu.Lock()
		defer mu.Unlock()
		k := [2]string{roleARN, externalID}
		if c, ok := clients[k]; ok {
			return c
		}
		creds := stscreds.NewAssumeRoleProvider(stsClient, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "keyseal"
			if externalID != "" {
				o.ExternalID = aws.String(externalID)
			}
		})
		c := cfg.Copy()
		c.Credentials = aws.NewCredentialsCache(creds)
		clients[k] = kms.NewFromConfig(c)
		return clients[k]
	}
}
