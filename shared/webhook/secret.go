package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// SecretPrefix begins every signing secret, as Standard Webhooks names it.
const SecretPrefix = "whsec_"

// secretBytes is the signing key's length.
const secretBytes = 32

// NewSecret returns a new signing secret: "whsec_" and the base64 of 32
// random bytes. It is shown to the admin once, at creation or rotation.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret returns the key bytes of a secret, refusing one without
// the prefix or of the wrong length (the Standard Webhooks library would
// accept an empty one).
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("webhook secret: want the %s prefix", SecretPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(b) != secretBytes {
		return nil, fmt.Errorf("webhook secret: want base64 of %d bytes", secretBytes)
	}
	return b, nil
}
