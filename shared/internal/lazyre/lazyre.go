// Package lazyre holds regular expressions that are compiled on first
// use instead of at package init: a Lambda's cold start pays only for the
// patterns its init actually matches (keyseal's validation patterns
// cost about 1.5 MB and 2-3 ms of init when compiled eagerly).
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled the first time it is used. An
// invalid expression panics then, as regexp.MustCompile would at init;
// each pattern's package tests exercise it.
type Regexp struct {
	compiled func() *regexp.Regexp
}

// New returns expr, to be compiled on first use.
func New(expr string) *Regexp {
	return &Regexp{compiled: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

// MatchString is regexp.Regexp.MatchString.
func (r *Regexp) MatchString(s string) bool { return r.compiled().MatchString(s) }

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (r *Regexp) FindStringSubmatch(s string) []string { return r.compiled().FindStringSubmatch(s) }

// FindStringIndex is regexp.Regexp.FindStringIndex.
func (r *Regexp) FindStringIndex(s string) []int { return r.compiled().FindStringIndex(s) }
