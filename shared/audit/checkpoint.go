package audit

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Why a hash chain and not an RFC 6962 Merkle tree: a checkpoint of a
// Merkle tree can be checked against a later one with a logarithmic
// consistency proof, whereas proving that this chain extends a saved
// checkpoint replays every entry. keyseal's chains are small (admin acts
// and seal changes: thousands of entries per tenant, not billions), verify
// already replays the whole chain to recompute each entry's hash, and a
// replay of 1,000,000 entries costs about a second (README, Benchmarks).
// The chain also keeps every entry self-contained in one item with its
// prev_hash, so a store needs no tree nodes and an append stays one
// conditional transaction. If chains grow to where replay hurts, a Merkle
// tree over the same entry hashes can be added beside the chain.

// Checkpoint is one tenant chain's state in the C2SP tlog-checkpoint form:
// the origin line naming the log, the size (the seq of the last entry) and
// the root hash (that entry's hash, base64 in the note body).
type Checkpoint struct {
	Origin string
	Size   int64
	// Root is the hex hash of entry Size, as the chain stores hashes.
	Root string
}

// Body is the checkpoint's note text: three lines, each ending in "\n".
func (c Checkpoint) Body() (string, error) {
	root, err := hex.DecodeString(c.Root)
	if err != nil || len(root) != 32 {
		return "", fmt.Errorf("checkpoint root %q is not a hex SHA-256 hash", c.Root)
	}
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\n") || c.Size < 1 {
		return "", fmt.Errorf("checkpoint needs an origin line and a size of at least 1")
	}
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(root)), nil
}

var errCheckpointBody = errors.New("not a checkpoint body: want an origin line, a decimal size and a base64 SHA-256 root hash")

// parseCheckpoint reads a note's text as a checkpoint. Extension lines
// after the root hash are allowed by C2SP and ignored (keyseal writes
// none).
func parseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return Checkpoint{}, errCheckpointBody
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 1 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, errCheckpointBody
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Checkpoint{}, errCheckpointBody
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: hex.EncodeToString(root)}, nil
}
