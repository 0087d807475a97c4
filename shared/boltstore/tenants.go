package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// GetTenant implements keyseal.Store.
func (s *Store) GetTenant(ctx context.Context, tenantID string) (*keyseal.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *keyseal.Tenant
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = readTenant(tx, tenantID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CreateTenant implements keyseal.Store.
func (s *Store) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.NewTenant(t, v, rec); err != nil {
		return err
	}
	row := t.Clone()
	row.Revision = 1
	err := s.db.Update(func(tx *bolt.Tx) error {
		tenants := tx.Bucket(bucketTenants)
		if tenants.Get([]byte(t.ID)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s already exists", t.ID)
		}
		if err := putJSON(tenants, []byte(t.ID), row); err != nil {
			return err
		}
		if err := tx.Bucket(bucketShards).Put(shardKey(keyseal.ShardOf(t.ID), t.ID), nil); err != nil {
			return err
		}
		if err := indexKey(tx, nil, row); err != nil {
			return err
		}
		if err := createVersions(tx, t.ID, []keyseal.TMKVersion{v}); err != nil {
			return err
		}
		_, err := s.appendAudit(ctx, tx, t.ID, rec)
		return err
	})
	if err != nil {
		return wrap("create tenant", err)
	}
	t.Revision = row.Revision
	return nil
}

// UpdateTenant implements keyseal.Store. t.Revision is only incremented
// once the transaction has committed, so a caller can retry a failed write
// with the same value.
func (s *Store) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Change(t.ID, c); err != nil {
		return err
	}
	row := t.Clone()
	row.Revision = t.Revision + 1
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := readTenant(tx, t.ID)
		if err != nil {
			return err
		}
		if cur.Revision != t.Revision {
			return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s changed concurrently (revision %d, expected %d)", t.ID, cur.Revision, t.Revision)
		}
		if err := putJSON(tx.Bucket(bucketTenants), []byte(t.ID), row); err != nil {
			return err
		}
		if err := indexKey(tx, cur, row); err != nil {
			return err
		}
		if err := createVersions(tx, t.ID, c.NewVersions); err != nil {
			return err
		}
		if err := replaceVersions(tx, t.ID, c.Replace); err != nil {
			return err
		}
		if err := putOutbox(tx, c.Events); err != nil {
			return err
		}
		if c.Audit != nil {
			_, err = s.appendAudit(ctx, tx, t.ID, *c.Audit)
		}
		return err
	})
	if err != nil {
		return wrap("update tenant", err)
	}
	t.Revision = row.Revision
	return nil
}

// ListTenants implements keyseal.Store. The cursor is the last id of the
// previous page; a limit of zero or less lists the whole shard.
func (s *Store) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if shard < 0 || shard >= keyseal.PollShards {
		return nil, "", keyseal.Errorf(keyseal.EINVALID, "shard %d out of range 0..%d", shard, keyseal.PollShards-1)
	}
	var ids []string
	next := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketShards).Cursor()
		start := shardKey(shard, cursor)
		k, _ := c.Seek(start)
		if cursor != "" && k != nil && string(k) == string(start) {
			k, _ = c.Next()
		}
		for ; k != nil && k[0] == byte(shard); k, _ = c.Next() {
			if limit > 0 && len(ids) == limit {
				next = ids[len(ids)-1]
				break
			}
			ids = append(ids, string(k[1:]))
		}
		return nil
	})
	if err != nil {
		return nil, "", wrap("list tenants", err)
	}
	return ids, next, nil
}

// Versions implements keyseal.Store; versions are keyed big-endian, so the
// bucket order is version order. An unknown tenant has no versions.
func (s *Store) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.TMKVersion
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tenantBucket(tx, bucketVersions, tenantID)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, raw []byte) error {
			v, err := decodeVersion(raw)
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("versions", err)
	}
	return out, nil
}

// createVersions writes new TMK versions under the tenant; ECONFLICT if
// one exists. The caller's transaction rolls back on the error, so none of
// its writes land.
func createVersions(tx *bolt.Tx, tenantID string, vs []keyseal.TMKVersion) error {
	if len(vs) == 0 {
		return nil
	}
	b, err := tx.Bucket(bucketVersions).CreateBucketIfNotExists([]byte(tenantID))
	if err != nil {
		return err
	}
	for _, v := range vs {
		if b.Get(versionKey(v.Version)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "TMK version %d already exists", v.Version)
		}
		if err := putJSON(b, versionKey(v.Version), v); err != nil {
			return err
		}
	}
	return nil
}

// replaceVersions overwrites existing TMK versions; ECONFLICT if one is
// missing or already revoked. The check reads the stored version, not the
// caller's copy: a re-wrap that read the versions before a concurrent
// revoke must not write the erased blob back.
func replaceVersions(tx *bolt.Tx, tenantID string, vs []keyseal.TMKVersion) error {
	if len(vs) == 0 {
		return nil
	}
	b := tenantBucket(tx, bucketVersions, tenantID)
	for _, v := range vs {
		var raw []byte
		if b != nil {
			raw = b.Get(versionKey(v.Version))
		}
		if raw == nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "TMK version %d is missing or revoked", v.Version)
		}
		cur, err := decodeVersion(raw)
		if err != nil {
			return err
		}
		if cur.RevokedAt != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "TMK version %d is missing or revoked", v.Version)
		}
		if err := putJSON(b, versionKey(v.Version), v); err != nil {
			return err
		}
	}
	return nil
}

func decodeVersion(raw []byte) (keyseal.TMKVersion, error) {
	var v keyseal.TMKVersion
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode version: %w", err)
	}
	v.CreatedAt = v.CreatedAt.UTC()
	utcPtr(v.RevokedAt)
	return v, nil
}

func readTenant(tx *bolt.Tx, tenantID string) (*keyseal.Tenant, error) {
	raw := tx.Bucket(bucketTenants).Get([]byte(tenantID))
	if raw == nil || tenantID == "" {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "tenant %s has no KMS configuration", tenantID)
	}
	var t keyseal.Tenant
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode tenant: %w", err)
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	utcPtr(t.SealedSince)
	utcPtr(t.LastVerifiedAt)
	utcPtr(t.DegradedSince)
	return &t, nil
}

// versionKey encodes a TMK version number big-endian.
func versionKey(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

// shardKey is the shard index key: one shard byte (PollShards fits in a
// byte), then the tenant id, so a shard's tenants are one ordered range.
func shardKey(shard int, tenantID string) []byte {
	return append([]byte{byte(shard)}, tenantID...)
}

// TenantsByKey implements keyseal.KeyIndex on the tenant_keys bucket.
func (s *Store) TenantsByKey(ctx context.Context, provider, keyID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := []string{}
	prefix := keyIndexKey(provider, keyID, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTenantKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, wrap("tenants by key", err)
	}
	return ids, nil
}

// KeysInUse implements keyseal.KeyIndex on the tenant_keys bucket: its
// keys are ordered by provider, then key id, so distinct ids come in
// order.
func (s *Store) KeysInUse(ctx context.Context, provider string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := []string{}
	prefix := []byte(provider + "\x00")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTenantKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			id, _, ok := bytes.Cut(k[len(prefix):], []byte{0})
			if ok && (len(ids) == 0 || ids[len(ids)-1] != string(id)) {
				ids = append(ids, string(id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("keys in use", err)
	}
	return ids, nil
}

// keyIndexKey is a tenant_keys key: provider NUL key id NUL tenant id
// (with tenantID "", the prefix of every tenant using the key).
func keyIndexKey(provider, keyID, tenantID string) []byte {
	return []byte(provider + "\x00" + keyID + "\x00" + tenantID)
}

// indexKey moves a tenant's key index entry from what old (nil: none) had
// to what row has; only BYOK tenants have one.
func indexKey(tx *bolt.Tx, old, row *keyseal.Tenant) error {
	b := tx.Bucket(bucketTenantKeys)
	if old != nil && old.BYOK {
		if err := b.Delete(keyIndexKey(old.Key.Provider, old.Key.KeyID, old.ID)); err != nil {
			return err
		}
	}
	if !row.BYOK {
		return nil
	}
	return b.Put(keyIndexKey(row.Key.Provider, row.Key.KeyID, row.ID), nil)
}

// indexAllKeys fills the key index from the tenant rows.
func indexAllKeys(tx *bolt.Tx) error {
	return tx.Bucket(bucketTenants).ForEach(func(k, v []byte) error {
		var t keyseal.Tenant
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("index tenant %s: %w", k, err)
		}
		return indexKey(tx, nil, &t)
	})
}
