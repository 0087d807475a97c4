package webhook_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/webhook"
)

func TestAllowedAddr(t *testing.T) {
	for addr, refused := range map[string]bool{
		"93.184.215.14": false, "2606:4700::6810:84e5": false, "8.8.8.8": false,
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"fd12::1": true, "169.254.169.254": true, "169.254.1.1": true, "fd00:ec2::254": true, "fe80::1": true,
		"224.0.0.1": true, "ff02::1": true, "0.0.0.0": true, "::": true, "100.64.0.1": true,
		"::ffff:127.0.0.1": true, "::ffff:169.254.169.254": true, "::ffff:10.0.0.1": true,
		// NAT64 (RFC 6052) and 6to4 (RFC 3056) addresses reach the IPv4
		// address they embed.
		"64:ff9b::7f00:1": true, "64:ff9b::a9fe:a9fe": true, "64:ff9b::a00:7": true, "64:ff9b::5db8:d70e": false,
		"2002:7f00:1::1": true, "2002:a00:7::": true, "2002:5db8:d70e::1": false,
	} {
		err := webhook.AllowedAddr(netip.MustParseAddr(addr))
		if (err != nil) != refused {
			t.Errorf("%s: err = %v, want refused %v", addr, err, refused)
		}
	}
}

func TestCheckURL(t *testing.T) {
	prod, dev := webhook.Policy{}, webhook.Policy{Dev: true}
	for _, tc := range []struct {
		p    webhook.Policy
		url  string
		want string // "" accepted, else a piece of the error
	}{
		{prod, "https://hooks.example.com/keyseal", ""},
		{prod, "https://hooks.example.com:8443/k?x=1", ""},
		{prod, "https://hooks.example.com:65536/", "not a port"},
		{prod, "https://hooks.example.com:0/", "not a port"},
		{dev, "http://127.0.0.1:99999/hook", "not a port"},
		{prod, "http://hooks.example.com/keyseal", "must use https"},
		{prod, "http://127.0.0.1:9000/", "must use https"},
		{prod, "https://127.0.0.1/", "loopback"},
		{prod, "https://[::1]/", "loopback"},
		{prod, "https://169.254.169.254/latest/meta-data", "metadata"},
		{prod, "https://[fd00:ec2::254]/", "metadata"},
		{prod, "https://10.0.0.8/hook", "private"},
		{prod, "https://localhost/hook", "loopback name"},
		{prod, "https://a.localhost/hook", "loopback name"},
		{prod, "https://user:pw@hooks.example.com/", "credentials"},
		{prod, "hooks.example.com/keyseal", "absolute https URL"},
		{prod, "not a url", "absolute https URL"},
		{prod, "ftp://hooks.example.com/", "must use https"},
		{prod, "https://hooks.example.com/" + strings.Repeat("a", keyseal.MaxWebhookURL), "bytes"},
		{dev, "http://127.0.0.1:9000/hook", ""},
		{dev, "http://localhost:9000/hook", ""},
		{dev, "https://hooks.example.com/", ""},
		{dev, "http://hooks.example.com/", "only to 127.0.0.1 or localhost"},
		{dev, "http://10.0.0.8/", "only to 127.0.0.1 or localhost"},
		{dev, "https://192.168.0.10/", "private"},
	} {
		_, err := tc.p.CheckURL(tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v %q: %v", tc.p, tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v %q: err = %v, want %q", tc.p, tc.url, err, tc.want)
		case err != nil && keyseal.ErrorCode(err) != keyseal.EINVALID:
			t.Errorf("%q: code %s, want %s", tc.url, keyseal.ErrorCode(err), keyseal.EINVALID)
		}
	}
}

func TestAllowedDial(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	if err := (webhook.Policy{Dev: true}).AllowedDial("localhost", lo); err != nil {
		t.Fatal(err)
	}
	// A name that resolves to loopback (DNS rebinding) is refused, in dev
	// mode too: only the dev hosts themselves reach loopback.
	if (webhook.Policy{Dev: true}).AllowedDial("rebind.example.com", lo) == nil || (webhook.Policy{}).AllowedDial("localhost", lo) == nil {
		t.Fatal("loopback admitted for a name other than the dev hosts, or outside dev mode")
	}
}

func TestSecret(t *testing.T) {
	s, err := webhook.NewSecret()
	if err != nil || !strings.HasPrefix(s, "whsec_") {
		t.Fatal(s, err)
	}
	if b, err := webhook.ParseSecret(s); err != nil || len(b) != 32 {
		t.Fatal(len(b), err)
	}
	for _, bad := range []string{"", "whsec_", "whsec_AAAA", strings.TrimPrefix(s, "whsec_")} {
		if _, err := webhook.ParseSecret(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCheckURLAcceptsWhatItReturns: the URL stored is CheckURL's answer
// (re-encoded), and every attempt checks it again, so an accepted URL
// must stay accepted once normalized: one that grows past 2 KiB when
// percent-encoded is refused at creation, not at every delivery.
func TestCheckURLAcceptsWhatItReturns(t *testing.T) {
	dev := webhook.Policy{Dev: true}
	for _, raw := range []string{
		"http://127.0.0.1:9000/" + strings.Repeat("é", 1000),
		"https://hooks.example.com/" + strings.Repeat("a b", 600),
		"https://hooks.example.com/k?x=" + strings.Repeat("é", 300),
	} {
		u, err := dev.CheckURL(raw)
		if err != nil {
			if keyseal.ErrorCode(err) != keyseal.EINVALID || len(raw) > keyseal.MaxWebhookURL {
				t.Fatalf("%d bytes: %v", len(raw), err)
			}
			continue // refused at creation: fine
		}
		if _, err := dev.CheckURL(u.String()); err != nil {
			t.Errorf("accepted %d bytes, stored %d, then refused at delivery: %v", len(raw), len(u.String()), err)
		}
	}
}
