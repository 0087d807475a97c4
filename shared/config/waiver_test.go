package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/waiver"
)

// TestWaiverFile: without KEYSEAL_WAIVER_FILE the embedded waiver is the
// current one; a good file replaces it; a missing, unversioned or
// oversized file stops the process at start, naming the variable.
func TestWaiverFile(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil || c.Waiver != waiver.Embedded() {
		t.Fatalf("default waiver: %+v, %v", c.Waiver, err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.txt", "version: 2027-02\nNew terms.\n")
	c, err = config.Load(env(map[string]string{"KEYSEAL_WAIVER_FILE": good}))
	if err != nil || c.Waiver.Version != "2027-02" || c.Waiver.Text != "version: 2027-02\nNew terms.\n" || len(c.Waiver.SHA256) != 64 {
		t.Fatalf("waiver file: %+v, %v", c.Waiver, err)
	}
	for name, path := range map[string]string{
		"missing":     filepath.Join(dir, "none.txt"),
		"unversioned": write("unversioned.txt", "New terms.\n"),
		"bad version": write("badversion.txt", "version: two words\ntext\n"),
		"no text":     write("empty.txt", "version: \n"),
		"oversized":   write("big.txt", "version: 1\n"+strings.Repeat("x", waiver.MaxSize)),
	} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_WAIVER_FILE": path})); err == nil || !strings.Contains(err.Error(), "KEYSEAL_WAIVER_FILE") {
			t.Errorf("%s waiver file: %v", name, err)
		}
	}
}

// TestServicePrincipal: a role ARN (with a path) or an account root in any
// partition; anything else stops the process; the admin functions need it.
func TestServicePrincipal(t *testing.T) {
	for _, ok := range []string{"arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:role/keyseal/prod-kms",
		"arn:aws-us-gov:iam::123456789012:role/k"} {
		c, err := config.Load(env(map[string]string{"KEYSEAL_SERVICE_PRINCIPAL": ok}))
		if err != nil || c.ServicePrincipal != ok || c.RequireServicePrincipal() != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"*", "123456789012", "arn:aws:iam::123456789012:user/bob", "arn:aws:iam::1234:root", "arn:aws:sts::123456789012:assumed-role/r/s"} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_SERVICE_PRINCIPAL": bad})); err == nil || !strings.Contains(err.Error(), "KEYSEAL_SERVICE_PRINCIPAL") {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
	c, _ := config.Load(env(nil))
	if err := c.RequireServicePrincipal(); err == nil || !strings.Contains(err.Error(), "KEYSEAL_SERVICE_PRINCIPAL") {
		t.Fatalf("RequireServicePrincipal without it: %v", err)
	}
}
