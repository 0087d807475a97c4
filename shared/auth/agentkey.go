package auth

import "strings"

// agentKeyPrefix starts every agent key, so leaked keys are recognisable
// by secret scanners and cannot be confused with step-up tokens.
const agentKeyPrefix = "ksa_"

// NewAgentKey returns a new agent key and the hash to store. The key is
// shown to the admin once and never stored.
func NewAgentKey() (key, hash string, err error) {
	key, err = randomToken(agentKeyPrefix)
	if err != nil {
		return "", "", err
	}
	return key, HashAgentKey(key), nil
}

// HashAgentKey is the stored form of an agent key: hex SHA-256. Agent keys
// carry 256 random bits, so no salt or password stretching is needed, and a
// fast hash lets the store look agents up by it.
func HashAgentKey(key string) string { return hashSecret(key) }

// BearerToken extracts the credential of an "Authorization: Bearer <x>"
// header. The scheme is case-insensitive (RFC 9110 §11.1); ok is false for
// another scheme or an empty credential.
func BearerToken(authorization string) (token string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(authorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(rest)
	return token, token != ""
}
