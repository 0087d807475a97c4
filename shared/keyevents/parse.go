// Package keyevents is push-based sealing: it reads the KMS events a
// customer forwards to keyseal's EventBridge bus, finds the tenants using
// the key an event names, and verifies each of them now, with the same
// per-tenant check as the poller. An event is only a hint: nothing here
// seals or unseals on an event's word, only the live verify decides.
package keyevents

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The EventBridge detail types keyseal acts on.
const (
	DetailCloudTrail     = "AWS API Call via CloudTrail"
	DetailDeletion       = "KMS CMK Deletion"
	DetailMaterialExpiry = "KMS Imported Key Material Expiration"
)

// SourceKMS is the EventBridge source of KMS's own events and of the
// CloudTrail records of its API calls.
const SourceKMS = "aws.kms"

// APIEvents are the KMS API calls whose CloudTrail record is a hint that a
// key's usability may have changed: the ones that can break it, then the
// recoveries.
var APIEvents = []string{
	"DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "RevokeGrant", "RetireGrant",
	"DeleteImportedKeyMaterial", "DisconnectCustomKeyStore",
	"EnableKey", "CancelKeyDeletion", "ConnectCustomKeyStore",
}

// Notice is what one recognised event names.
type Notice struct {
	// Name is the API call (DisableKey, ...) or the native detail type.
	Name    string
	Account string
	Region  string
	// KeyARNs are the distinct key ARNs the event names, sorted. A
	// custom key store event names none (its keys are not in the record).
	KeyARNs []string
	// CustomKeyStoreID is set for the custom key store calls.
	CustomKeyStoreID string
}

// envelope is the part of an EventBridge event keyseal reads.
type envelope struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// trail is the part of a CloudTrail record keyseal reads.
type trail struct {
	EventSource        string `json:"eventSource"`
	EventName          string `json:"eventName"`
	AWSRegion          string `json:"awsRegion"`
	RecipientAccountID string `json:"recipientAccountId"`
	RequestParameters  struct {
		KeyID            string `json:"keyId"`
		CustomKeyStoreID string `json:"customKeyStoreId"`
	} `json:"requestParameters"`
	Resources []struct {
		ARN  string `json:"ARN"`
		Type string `json:"type"`
	} `json:"resources"`
}

// native is the detail of KMS's own events.
type native struct {
	KeyID string `json:"key-id"`
}

// Parse reads one EventBridge event. ok is false, with no error, for an
// event keyseal does not act on (another source, detail type or API call):
// the rule should not deliver those, and one that does is ignored. An
// error means the event is not an EventBridge event at all.
func Parse(raw []byte) (n Notice, ok bool, err error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Notice{}, false, fmt.Errorf("keyevents: not an EventBridge event: %w", err)
	}
	if e.Source != SourceKMS {
		return Notice{}, false, nil
	}
	n = Notice{Account: e.Account, Region: e.Region}
	keys := e.Resources
	switch e.DetailType {
	case DetailCloudTrail:
		var d trail
		if len(e.Detail) > 0 {
			if err := json.Unmarshal(e.Detail, &d); err != nil {
				return Notice{}, false, fmt.Errorf("keyevents: CloudTrail detail: %w", err)
			}
		}
		if d.EventSource != "kms.amazonaws.com" || !slices.Contains(APIEvents, d.EventName) {
			return Notice{}, false, nil
		}
		n.Name = d.EventName
		if d.AWSRegion != "" {
			n.Region = d.AWSRegion
		}
		if d.RecipientAccountID != "" {
			n.Account = d.RecipientAccountID
		}
		n.CustomKeyStoreID = d.RequestParameters.CustomKeyStoreID
		for _, r := range d.Resources {
			keys = append(keys, r.ARN)
		}
		keys = append(keys, qualify(d.RequestParameters.KeyID, n.Region, n.Account))
	case DetailDeletion, DetailMaterialExpiry:
		var d native
		if len(e.Detail) > 0 {
			if err := json.Unmarshal(e.Detail, &d); err != nil {
				return Notice{}, false, fmt.Errorf("keyevents: %s detail: %w", e.DetailType, err)
			}
		}
		n.Name = e.DetailType
		keys = append(keys, qualify(d.KeyID, n.Region, n.Account))
	default:
		return Notice{}, false, nil
	}
	for _, k := range keys {
		if IsKeyARN(k) && !slices.Contains(n.KeyARNs, k) {
			n.KeyARNs = append(n.KeyARNs, k)
		}
	}
	slices.Sort(n.KeyARNs)
	return n, true, nil
}

// qualify turns a bare key id (a UUID or an mrk- id) into the key ARN of
// the event's region and account; an ARN is returned as is, anything else
// (an alias, nothing) as "".
func qualify(keyID, region, account string) string {
	switch {
	case keyID == "", strings.HasPrefix(keyID, "alias/"):
		return ""
	case strings.HasPrefix(keyID, "arn:"):
		return keyID
	case region == "" || account == "" || strings.ContainsAny(keyID, ":/"):
		return ""
	}
	return "arn:" + partition(region) + ":kms:" + region + ":" + account + ":key/" + keyID
}

// partition is the ARN partition of a region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// IsKeyARN reports whether s has the shape of a KMS key ARN
// (arn:PARTITION:kms:REGION:ACCOUNT:key/ID), without a regular expression
// (they cost a Lambda's init time).
func IsKeyARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kms" || parts[3] == "" {
		return false
	}
	if len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" {
		return false
	}
	id, ok := strings.CutPrefix(parts[5], "key/")
	return ok && id != "" && !strings.ContainsAny(id, "/:")
}
