package tenantkms

import (
	"context"
	"crypto/rand"
	"errors"
	"regexp"

	"github.com/keyseal/keyseal/shared/keyseal"
)

var (
	keyARNPattern   = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
	aliasARNPattern = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:alias/`)
	roleARNPattern  = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDRe    = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	localKeyPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
)

// ValidateKey checks a customer key reference at the edge (seed 004's
// registration errors). It returns EKEYARN for a malformed or alias ARN and
// EINVALID for the other fields.
func ValidateKey(k keyseal.KeyRef) error {
	switch k.Provider {
	case keyseal.ProviderAWS:
		switch {
		case k.KeyID == "":
			return keyseal.Errorf(keyseal.EINVALID, "key_arn is required for provider aws-kms")
		case aliasARNPattern.MatchString(k.KeyID):
			return keyseal.Errorf(keyseal.EKEYARN, "alias ARNs are not accepted: use the key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY_ID); `aws kms describe-key --key-id alias/NAME` prints it").
				With("expected_format", "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID")
		case !keyARNPattern.MatchString(k.KeyID):
			return keyseal.Errorf(keyseal.EKEYARN, "key_arn must be a KMS key ARN of the form arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (KEY_ID a UUID or mrk-...)").
				With("expected_format", "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID")
		case k.RoleARN != "" && !roleARNPattern.MatchString(k.RoleARN):
			return keyseal.Errorf(keyseal.EINVALID, "role_arn must be an IAM role ARN of the form arn:aws:iam::ACCOUNT:role/NAME")
		case k.ExternalID != "" && k.RoleARN == "":
			return keyseal.Errorf(keyseal.EINVALID, "external_id needs role_arn")
		case k.ExternalID != "" && (len(k.ExternalID) < 2 || len(k.ExternalID) > 1224 || !externalIDRe.MatchString(k.ExternalID)):
			return keyseal.Errorf(keyseal.EINVALID, "external_id must be 2-1224 characters of letters, digits and +=,.@:/-")
		}
		return nil
	case keyseal.ProviderLocal:
		if !localKeyPattern.MatchString(k.KeyID) {
			return keyseal.Errorf(keyseal.EINVALID, "key_id is required for provider local")
		}
		if k.RoleARN != "" || k.ExternalID != "" {
			return keyseal.Errorf(keyseal.EINVALID, "role_arn and external_id apply to aws-kms only")
		}
		return nil
	case "":
		return keyseal.Errorf(keyseal.EINVALID, "provider is required (aws-kms)")
	default:
		return keyseal.Errorf(keyseal.EINVALID, "unsupported provider %q (supported: aws-kms)", k.Provider)
	}
}

// Register activates BYOK: after a live wrap+unwrap test of the customer's
// key, every stored TMK version is re-wrapped under it and the tenant row
// switched, in one transaction with a byok.kms.register audit entry. The
// tenant is provisioned first when new.
//
// It returns EKEYEXISTS when a CMK is already registered, ECMKACCESS (with a
// reason) when the key fails the test, ESEALED when the current TMK cannot be
// unwrapped.
func (s *Service) Register(ctx context.Context, tenantID string, key keyseal.KeyRef, actor string) (*keyseal.Tenant, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	t, err := s.Provision(ctx, tenantID, actor)
	if err != nil {
		return nil, err
	}
	if t.BYOK {
		return nil, keyErr(keyseal.Errorf(keyseal.EKEYEXISTS, "a customer key is already registered; DELETE /admin/tenant-kms first (re-wraps under the platform key, nothing is lost), then register the new key"), t)
	}
	if err := s.testKey(ctx, tenantID, key); err != nil {
		return nil, err
	}
	return s.rewrapTo(ctx, t, key, true, keyseal.AuditRecord{Action: keyseal.ActionRegister, Severity: keyseal.SeverityCritical, Actor: actor,
		Details: map[string]string{"provider": key.Provider, "key_id": key.KeyID, "role_arn": key.RoleARN}})
}

// Deregister leaves BYOK: every TMK version is re-wrapped under the platform
// key. It needs the customer's key to still work.
func (s *Service) Deregister(ctx context.Context, tenantID, actor string) (*keyseal.Tenant, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !t.BYOK {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no customer key is registered")
	}
	return s.rewrapTo(ctx, t, s.opt.PlatformKey, false, keyseal.AuditRecord{Action: keyseal.ActionDeregister, Severity: keyseal.SeverityCritical, Actor: actor,
		Details: map[string]string{"previous_key_id": t.Key.KeyID}})
}

func keyErr(e *keyseal.Error, t *keyseal.Tenant) *keyseal.Error {
	return e.With("key_id", t.Key.KeyID)
}

// testKey wraps and unwraps a random probe with the candidate key.
func (s *Service) testKey(ctx context.Context, tenantID string, key keyseal.KeyRef) error {
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	blob, err := s.wrap(ctx, key, probe, probeContext(tenantID))
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, s.opt.KMSTimeout)
		_, err = s.kms.Unwrap(ctx, key, blob, probeContext(tenantID))
		cancel()
	}
	if err != nil {
		kerr := keyseal.ClassifyKMS(err)
		return keyseal.Errorf(keyseal.ECMKACCESS, "wrap/unwrap test with the key failed (%s): check the key policy allows kms:Encrypt and kms:Decrypt for keyseal and the key is enabled", kerr.Code).
			With("reason", kerr.Reason)
	}
	return nil
}

// rewrapTo re-wraps every live TMK version under key and switches the
// tenant to it, conditional on the tenant row not having moved.
func (s *Service) rewrapTo(ctx context.Context, t *keyseal.Tenant, key keyseal.KeyRef, byok bool, rec keyseal.AuditRecord) (*keyseal.Tenant, error) {
	if err := sealedError(t); err != nil {
		return nil, err
	}
	versions, err := s.store.Versions(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	var rewrapped []keyseal.TMKVersion
	for _, v := range versions {
		if v.Wrapped == nil {
			continue // crypto-erased: stays erased
		}
		tmk, err := s.unwrap(ctx, v)
		if err != nil {
			var kerr *keyseal.KMSError
			if errors.As(err, &kerr) {
				if _, ferr := s.fail(ctx, t, kerr, true); ferr != nil {
					return nil, ferr
				}
				return nil, keyseal.Errorf(keyseal.ESEALED, "cannot unwrap TMK version %d with the current key (%s)", v.Version, kerr.Code)
			}
			return nil, err
		}
		nv, err := s.newVersion(ctx, t.ID, v.Version, tmk, key)
		if err != nil {
			kerr := keyseal.ClassifyKMS(err)
			return nil, keyseal.Errorf(keyseal.ECMKACCESS, "re-wrapping TMK version %d under the new key failed (%s)", v.Version, kerr.Code).With("reason", kerr.Reason)
		}
		nv.CreatedAt = v.CreatedAt
		rewrapped = append(rewrapped, nv)
	}
	return s.mutate(ctx, t.ID, func(cur *keyseal.Tenant) (keyseal.Change, error) {
		if cur.ActiveVersion != t.ActiveVersion || cur.Key != t.Key || cur.Status != keyseal.StatusActive {
			return keyseal.Change{}, keyseal.Errorf(keyseal.ECONFLICT, "the tenant's key changed concurrently; retry")
		}
		cur.Key = key
		cur.BYOK = byok
		return keyseal.Change{PutVersions: rewrapped, Audit: &rec}, nil
	})
}
