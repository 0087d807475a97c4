package kmstest

import "testing"

func TestOtherID(t *testing.T) {
	for id, want := range map[string]string{
		"local-0123456789abcdef": "local-123456789abcdef0",
		"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-23456789a1bc",
		"mrk-9F":  "mrk-A0",
		"alias/x": "alias/x-0",
	} {
		if got := otherID(id); got != want {
			t.Errorf("otherID(%q) = %q, want %q", id, got, want)
		}
	}
}
