package keyevents

import (
	"encoding/json"
	"strings"
	"time"
)

// CloudTrailEvent builds the EventBridge event CloudTrail delivers for a
// KMS API call on keyARN: what dev mode feeds its in-process handler and
// what the LocalStack drill puts on the bus (LocalStack emits none). It
// carries the fields Parse reads and the ones a real record has around
// them; the key ARN names the account and region.
func CloudTrailEvent(apiCall, keyARN string, at time.Time) []byte {
	region, account := "", ""
	if parts := strings.SplitN(keyARN, ":", 6); len(parts) == 6 {
		region, account = parts[3], parts[4]
	}
	ts := at.UTC().Format(time.RFC3339)
	ev := map[string]any{
		"version":     "0",
		"id":          "keyseal-dev-" + at.UTC().Format("20060102T150405.000000000"),
		"detail-type": DetailCloudTrail,
		"source":      SourceKMS,
		"account":     account,
		"time":        ts,
		"region":      region,
		"resources":   []string{},
		"detail": map[string]any{
			"eventVersion":       "1.09",
			"eventTime":          ts,
			"eventSource":        "kms.amazonaws.com",
			"eventName":          apiCall,
			"awsRegion":          region,
			"requestParameters":  map[string]string{"keyId": keyARN},
			"resources":          []map[string]string{{"accountId": account, "type": "AWS::KMS::Key", "ARN": keyARN}},
			"eventType":          "AwsApiCall",
			"managementEvent":    true,
			"readOnly":           false,
			"recipientAccountId": account,
			"eventCategory":      "Management",
		},
	}
	raw, _ := json.Marshal(ev) // maps of strings and bools: cannot fail
	return raw
}
