// Package privatefile writes files only their owner may read (keys,
// credentials) so that a crash never leaves half of one: the bytes go to a
// 0600 temporary file beside the target, are synced, then published.
package privatefile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with b atomically.
func Write(path string, b []byte) error {
	return publish(path, b, os.Rename)
}

// WriteNew publishes b at path only if nothing is there yet, with a hard
// link that fails with os.ErrExist instead of replacing what another
// process published meanwhile. On a file system without hard links it
// falls back to a rename: still atomic, but the last writer wins.
func WriteNew(path string, b []byte) error {
	return publish(path, b, func(tmp, path string) error {
		err := os.Link(tmp, path)
		if err != nil && !errors.Is(err, os.ErrExist) {
			err = os.Rename(tmp, path)
		}
		return err
	})
}

func publish(path string, b []byte, place func(tmp, path string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed; drops the link's source
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return place(tmp.Name(), path)
}
