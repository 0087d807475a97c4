// Package policydoc reads and names the statements of keyseal's event
// bus policy that the bus policy reconcile (package buspolicy) owns. It
// links no AWS client, so the admin Lambda can name and check a statement
// without the EventBridge SDK's package init.
package policydoc

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Prefix begins the id of every statement the reconcile owns; it never
// touches another (the CDK's organization statement, an operator's own).
const Prefix = "keyseal-account-"

// StatementID is the bus policy statement admitting account.
func StatementID(account string) string { return Prefix + account }

// IsAccount reports whether s is a 12-digit AWS account id (no regular
// expression: every Lambda linking shared/api would build it at init).
func IsAccount(s string) bool {
	return len(s) == 12 && strings.Trim(s, "0123456789") == ""
}

// AccountOfARN is the account field of an ARN (arn:PARTITION:SERVICE:
// REGION:ACCOUNT:RESOURCE), "" when it has none.
func AccountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" || !IsAccount(parts[4]) {
		return ""
	}
	return parts[4]
}

// Accounts are the accounts of the policy's statements whose
// ids the reconcile owns. An empty policy has none.
func Accounts(policy string) (map[string]bool, error) {
	out := map[string]bool{}
	if policy == "" {
		return out, nil
	}
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return nil, fmt.Errorf("policy is not JSON: %w", err)
	}
	var sts []struct {
		Sid string `json:"Sid"`
	}
	// Statement may be one object or a list (IAM policy grammar).
	if len(doc.Statement) > 0 && doc.Statement[0] == '{' {
		doc.Statement = append(append([]byte{'['}, doc.Statement...), ']')
	}
	if len(doc.Statement) > 0 {
		if err := json.Unmarshal(doc.Statement, &sts); err != nil {
			return nil, fmt.Errorf("policy statements: %w", err)
		}
	}
	for _, st := range sts {
		if a, ok := strings.CutPrefix(st.Sid, Prefix); ok && IsAccount(a) {
			out[a] = true
		}
	}
	return out, nil
}

// Admits reports whether policy (a bus's, from DescribeEventBus) has the
// reconcile's statement for account.
func Admits(policy, account string) (bool, error) {
	got, err := Accounts(policy)
	return got[account], err
}
