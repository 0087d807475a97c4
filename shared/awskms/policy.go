package awskms

// The key policy a customer adds to its CMK so keyseal can use it.
//
// kms:EncryptionContext:* condition keys exist only for the operations that
// carry an encryption context (Encrypt, Decrypt, GenerateDataKey, ...).
// DescribeKey has none, so a StringEquals on kms:EncryptionContext:... would
// never match it and deny it. Hence two statements: Encrypt and Decrypt
// only for keyseal's own context (keyseal:tenant = the tenant), and
// DescribeKey (which keyseal calls to tell a disabled key from one pending
// deletion) unconditioned; it reveals only metadata.

// PolicyStatement is one statement of a KMS key policy, in the policy
// document's own field names.
type PolicyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    []string                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// KeyPolicy is what GET /admin/tenant-kms/key-policy answers and what
// cannot_access_cmk carries as required_key_policy. Statement is the
// encryption-context-bound Encrypt/Decrypt statement; Statements holds it
// and the DescribeKey statement, both to paste into the policy's
// "Statement" list.
type KeyPolicy struct {
	Statement  PolicyStatement   `json:"statement"`
	Statements []PolicyStatement `json:"statements"`
	Principal  string            `json:"principal"`
}

// TenantContextKey is the encryption-context key every keyseal wrap of a
// tenant's TMK or probe carries, the one the policy condition names.
const TenantContextKey = "keyseal:tenant"

// PolicyFor returns the statements that let principal use a key for
// tenantID's TMKs only.
func PolicyFor(principal, tenantID string) KeyPolicy {
	who := map[string]string{"AWS": principal}
	use := PolicyStatement{Sid: "KeysealWrapTenantKeys", Effect: "Allow", Principal: who,
		Action: []string{"kms:Encrypt", "kms:Decrypt"}, Resource: "*",
		Condition: map[string]map[string]string{"StringEquals": {"kms:EncryptionContext:" + TenantContextKey: tenantID}}}
	describe := PolicyStatement{Sid: "KeysealDescribeKey", Effect: "Allow", Principal: who,
		Action: []string{"kms:DescribeKey"}, Resource: "*"}
	return KeyPolicy{Statement: use, Statements: []PolicyStatement{use, describe}, Principal: principal}
}
