// Package webhook delivers tenant.kms.* events to subscribed endpoints:
// Standard Webhooks v1 signatures, the address policy that keeps a
// delivery off keyseal's own network (SSRF), the retry schedule, and one
// delivery attempt. Where the attempts are queued (SQS on AWS, the
// embedded store in dev mode) is the caller's.
package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Policy says which URLs and addresses a delivery may reach.
type Policy struct {
	// Dev admits http://127.0.0.1 and http://localhost (any port) beside
	// the https rules, so a person can watch deliveries locally. Nothing
	// else loopback or private is admitted in any mode.
	Dev bool
}

// metadata are the cloud metadata endpoints, refused even where a
// broader rule would not catch them.
var metadata = []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254")}

// AllowedAddr refuses what a delivery must never reach: loopback,
// private (RFC 1918, RFC 4193), link-local, multicast, unspecified,
// CGNAT, and the cloud metadata addresses, also when written as an
// IPv4-mapped IPv6 address or embedded in a NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) address, which a gateway translates to that IPv4 address.
func AllowedAddr(a netip.Addr) error {
	a = a.Unmap()
	if v4, ok := embedded(a); ok {
		if err := AllowedAddr(v4); err != nil {
			return fmt.Errorf("%s embeds %s: %w", a, v4, err)
		}
	}
	for _, m := range metadata {
		if a == m {
			return fmt.Errorf("%s is a cloud metadata address", a)
		}
	}
	switch {
	case !a.IsValid():
		return errors.New("no address")
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address", a)
	case a.IsPrivate():
		return fmt.Errorf("%s is a private address", a)
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return fmt.Errorf("%s is a link-local address", a)
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address", a)
	case cgnat.Contains(a):
		return fmt.Errorf("%s is a shared (CGNAT) address", a)
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// devHost is a host dev mode admits over http.
func devHost(host string) bool { return host == "127.0.0.1" || strings.EqualFold(host, "localhost") }

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052's well-known prefix
	sixToFour = netip.MustParsePrefix("2002::/16")    // RFC 3056
)

// embedded is the IPv4 address a NAT64 or 6to4 address reaches.
func embedded(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// CheckURL parses a subscription URL and applies the policy's rules that
// need no DNS: https only (dev: also http to 127.0.0.1 or localhost), no
// credentials, at most keyseal.MaxWebhookURL bytes, a port (when given)
// in 1-65535, and a host that is not a refused address literal. Errors are EINVALID, naming the rule.
// Resolved addresses are checked again when dialling (Client).
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > keyseal.MaxWebhookURL {
		return nil, keyseal.Errorf(keyseal.EINVALID, "url is %d bytes: at most %d", len(raw), keyseal.MaxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, keyseal.Errorf(keyseal.EINVALID, "url must be an absolute https URL, such as https://hooks.example.com/keyseal")
	}
	// The URL kept and dialled is u.String(), percent-encoded: it must be
	// within the bound too, or each attempt would refuse it.
	if n := len(u.String()); n > keyseal.MaxWebhookURL {
		return nil, keyseal.Errorf(keyseal.EINVALID, "url is %d bytes once percent-encoded: at most %d", n, keyseal.MaxWebhookURL)
	}
	if u.User != nil {
		return nil, keyseal.Errorf(keyseal.EINVALID, "url must not carry credentials (user:password@)")
	}
	if u.Fragment != "" {
		return nil, keyseal.Errorf(keyseal.EINVALID, "url must not have a #fragment")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, keyseal.Errorf(keyseal.EINVALID, "url: port %q is not a port (1-65535)", port)
		}
	}
	host := u.Hostname()
	dev := p.Dev && devHost(host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && dev:
	case u.Scheme == "http" && p.Dev:
		return nil, keyseal.Errorf(keyseal.EINVALID, "url: http is admitted only to 127.0.0.1 or localhost in dev mode; use https")
	default:
		return nil, keyseal.Errorf(keyseal.EINVALID, "url must use https (got %q)", u.Scheme)
	}
	if dev {
		return u, nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return nil, keyseal.Errorf(keyseal.EINVALID, "url: %s is a loopback name", host)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := AllowedAddr(a); err != nil {
			return nil, keyseal.Errorf(keyseal.EINVALID, "url: %s", err.Error())
		}
	}
	return u, nil
}

// AllowedDial says whether a connection to addr (the resolved address of
// host) may be made: AllowedAddr, except that dev mode admits loopback
// for the dev hosts.
func (p Policy) AllowedDial(host string, addr netip.Addr) error {
	if p.Dev && devHost(host) && addr.Unmap().IsLoopback() {
		return nil
	}
	return AllowedAddr(addr)
}
