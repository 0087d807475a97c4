package config

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// principalPattern is the regexp validServicePrincipal replaced; the
// parser must agree with it on every string.
var principalPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::\d{12}:(root|role/[\w+=,.@/-]{1,512})$`)

// TestServicePrincipalParserMatchesTheRegexp compares the parser with the
// regexp on strings assembled from the pieces of real principals and
// near misses (random, seeded, so a failure reproduces).
func TestServicePrincipalParserMatchesTheRegexp(t *testing.T) {
	pieces := []string{"arn:", "aws", "-", "us", "gov", "cn", "AWS", ":", "iam", "::", "sts", "123456789012", "12345678901", "1",
		"root", "role/", "user/", "k", "prod-kms/", "a+b=c,d.e@f", "_", " ", "é", "\n", "*", "/", strings.Repeat("r", 500), "\x00"}
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		if got, want := validServicePrincipal(s), principalPattern.MatchString(s); got != want {
			t.Fatalf("validServicePrincipal(%q) = %v, the regexp says %v", s, got, want)
		}
	}
	for _, s := range []string{"arn:aws:iam::123456789012:root", "arn:aws-:iam::123456789012:root", "arn:aws--us:iam::123456789012:root",
		"arn:aws-us-gov:iam::123456789012:role/k", "arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:role/" + strings.Repeat("x", 512),
		"arn:aws:iam::123456789012:role/" + strings.Repeat("x", 513), "arn:aws:iam::12345678901a:root", "arn:aws:iam::123456789012:rootx"} {
		check(s)
	}
	accepted := 0
	for range 50000 {
		// Mostly well-formed prefixes, so the later checks are reached.
		var b strings.Builder
		if rng.IntN(4) > 0 {
			b.WriteString([]string{"arn:aws:iam::123456789012:", "arn:aws-us-gov:iam::123456789012:", "arn:aws-:iam::123456789012:", "arn:aws:iam::"}[rng.IntN(4)])
		}
		if rng.IntN(2) == 0 {
			b.WriteString([]string{"root", "role/", "role/k"}[rng.IntN(3)])
		}
		for range rng.IntN(4) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		check(s)
		if principalPattern.MatchString(s) {
			accepted++
		}
	}
	if accepted < 1000 {
		t.Fatalf("only %d generated strings were valid principals: the comparison says little", accepted)
	}
}
