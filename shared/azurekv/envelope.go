package azurekv

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// The envelope binds the encryption context. AWS KMS and Cloud KMS take
// it as additional authenticated data; RSA-OAEP in Key Vault has none (the
// wrapKey "aad" member is for AES-GCM keys only, and OAEP labels are not
// exposed). So keyseal wraps envelopeVersion || SHA-256(canonical ec) ||
// plaintext and checks the digest after unwrap: a blob moved to another
// tenant's row (another context) unwraps but is refused as
// invalid_ciphertext, which is what AAD gives on the other providers. The
// digest, not the context itself, goes inside so the envelope has a fixed
// overhead under the RSA-OAEP-256 limit (190 bytes for a 2048-bit key); it
// is inside the RSA ciphertext, so only a party that can unwrap sees it.
const envelopeVersion = 1

// maxPlaintext is what fits next to the digest in RSA-OAEP-256 under a
// 2048-bit key: 256 - 2*32 - 2 - 1 - 32.
const maxPlaintext = 157

// contextDigest hashes ec in a canonical form: members sorted by name,
// each name and value length-prefixed (so "a=b" never collides with
// "a"+"=b"), under a label naming this use.
func contextDigest(ec map[string]string) [sha256.Size]byte {
	names := make([]string, 0, len(ec))
	for n := range ec {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	h.Write([]byte("keyseal azure-kv encryption context v1\n"))
	var n [binary.MaxVarintLen64]byte
	put := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	for _, name := range names {
		put(name)
		put(ec[name])
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func seal(ec map[string]string, plaintext []byte) ([]byte, error) {
	if len(plaintext) > maxPlaintext {
		return nil, fmt.Errorf("azure-kv: %d bytes is more than RSA-OAEP-256 wraps with the context (%d)", len(plaintext), maxPlaintext)
	}
	d := contextDigest(ec)
	env := make([]byte, 0, 1+len(d)+len(plaintext))
	env = append(env, envelopeVersion)
	env = append(env, d[:]...)
	return append(env, plaintext...), nil
}

func unseal(ec map[string]string, env []byte) ([]byte, error) {
	if len(env) < 1+sha256.Size || env[0] != envelopeVersion {
		return nil, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonInvalidBlob, Code: "MalformedEnvelope",
			Err: fmt.Errorf("azure-kv: the unwrapped value is not a keyseal envelope")}
	}
	d := contextDigest(ec)
	if subtle.ConstantTimeCompare(env[1:1+sha256.Size], d[:]) != 1 {
		return nil, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonInvalidBlob, Code: "EncryptionContextMismatch",
			Err: fmt.Errorf("azure-kv: the blob was wrapped under another encryption context")}
	}
	return append([]byte(nil), env[1+sha256.Size:]...), nil
}
