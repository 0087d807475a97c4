package keyevents_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/keyevents"
)

const keyARN = "arn:aws:kms:eu-west-1:210987654321:key/4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file  string
		ok    bool
		name  string
		keys  []string
		store string
	}{
		{"disable-key.json", true, "DisableKey", []string{keyARN}, ""},
		{"enable-key.json", true, "EnableKey", []string{keyARN}, ""},
		{"schedule-key-deletion-bare-id.json", true, "ScheduleKeyDeletion", []string{keyARN}, ""},
		{"cancel-key-deletion.json", true, "CancelKeyDeletion", []string{keyARN}, ""},
		{"put-key-policy.json", true, "PutKeyPolicy", []string{keyARN}, ""},
		{"revoke-grant.json", true, "RevokeGrant", []string{keyARN}, ""},
		{"retire-grant.json", true, "RetireGrant", []string{keyARN}, ""},
		{"delete-imported-key-material.json", true, "DeleteImportedKeyMaterial", []string{keyARN}, ""},
		{"disconnect-custom-key-store.json", true, "DisconnectCustomKeyStore", nil, "cks-1234567890abcdef0"},
		{"connect-custom-key-store.json", true, "ConnectCustomKeyStore", nil, "cks-1234567890abcdef0"},
		{"cmk-deletion.json", true, keyevents.DetailDeletion, []string{keyARN}, ""},
		{"material-expiration.json", true, keyevents.DetailMaterialExpiry, []string{keyARN}, ""},
		{"disable-key-alias-only.json", true, "DisableKey", nil, ""},
		{"encrypt-ignored.json", false, "", nil, ""},
		{"create-alias-ignored.json", false, "", nil, ""},
		{"rotation-ignored.json", false, "", nil, ""},
		{"ec2-ignored.json", false, "", nil, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			n, ok, err := keyevents.Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if n.Name != tc.name || !slices.Equal(n.KeyARNs, tc.keys) || n.CustomKeyStoreID != tc.store {
				t.Fatalf("got %+v, want name %s keys %v store %q", n, tc.name, tc.keys, tc.store)
			}
			if n.Account != "210987654321" || n.Region != "eu-west-1" {
				t.Fatalf("account/region = %s/%s", n.Account, n.Region)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, raw := range []string{`not json`, `[1,2]`, `{"source":"aws.kms","detail-type":"AWS API Call via CloudTrail","detail":"x"}`} {
		if _, ok, err := keyevents.Parse([]byte(raw)); err == nil || ok {
			t.Errorf("Parse(%s) = ok %v, err %v; want an error", raw, ok, err)
		}
	}
}

func TestIsKeyARN(t *testing.T) {
	for s, want := range map[string]bool{
		keyARN: true,
		"arn:aws-cn:kms:cn-north-1:210987654321:key/mrk-0123456789abcdef0123456789abcdef": true,
		"arn:aws:kms:eu-west-1:210987654321:alias/keyseal":                                false,
		"arn:aws:kms:eu-west-1:21098765432:key/abc":                                       false,
		"arn:aws:s3:::bucket":                     false,
		"arn:aws:kms:eu-west-1:210987654321:key/": false,
		"4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51":    false,
	} {
		if got := keyevents.IsKeyARN(s); got != want {
			t.Errorf("IsKeyARN(%s) = %v", s, got)
		}
	}
}

// TestRuleMatchesParser: the CDK rule matches exactly the API calls Parse
// acts on (infra is its own module, so it reads the list as source).
func TestRuleMatchesParser(t *testing.T) {
	src, err := os.ReadFile("../../infra/stack/keyevents.go")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(src), "var KeyAPIEvents = []string{")
	list, _, ok2 := strings.Cut(list, "}")
	if !ok || !ok2 {
		t.Fatal("infra/stack/keyevents.go has no KeyAPIEvents list")
	}
	var names []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.Trim(strings.TrimSpace(f), `"`); f != "" {
			names = append(names, f)
		}
	}
	if !slices.Equal(names, keyevents.APIEvents) {
		t.Fatalf("the rule matches %v, Parse acts on %v", names, keyevents.APIEvents)
	}
}
