package localserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keyseal/keyseal/shared/keyevents"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
)

// PushEnabled reads KEYSEAL_DEV_PUSH: "" or "1" (the default) has a
// change through POST /dev/kms/keys/{key_id}/state emit the CloudTrail
// record AWS would into the in-process key-events handler, "0" turns it
// off to rehearse the poll; anything else is an error.
func PushEnabled(getenv func(string) string) (bool, error) {
	switch v := getenv("KEYSEAL_DEV_PUSH"); v {
	case "", "1":
		return true, nil
	case "0":
		return false, nil
	default:
		return false, fmt.Errorf("KEYSEAL_DEV_PUSH must be 0 or 1, not %q", v)
	}
}

// devKeyRegion and devAccount make a local key's id into a key ARN, the
// shape CloudTrail names keys by: arn:aws:kms:local:000000000000:key/ID.
const (
	devKeyRegion = "local"
	devAccount   = "000000000000"
)

// DevKeyARN is the key ARN dev mode's CloudTrail-shaped events give a
// local key.
func DevKeyARN(localKeyID string) string {
	return "arn:aws:kms:" + devKeyRegion + ":" + devAccount + ":key/" + localKeyID
}

// resolveDevKey maps an event's key ARN to the tenants' key reference: a
// dev ARN is a local key, any other an aws-kms key (LocalStack mode).
func resolveDevKey(arn string) (string, string) {
	if id, ok := strings.CutPrefix(arn, "arn:aws:kms:"+devKeyRegion+":"+devAccount+":key/"); ok {
		return keyseal.ProviderLocal, id
	}
	return keyseal.ProviderAWS, arn
}

// apiCallFor is the KMS API call that moves a key from prev to next, as
// CloudTrail would record it; "" for a change AWS records no KMS call for
// (a network outage). Access denied is a key policy change.
func apiCallFor(prev, next string) string {
	switch next {
	case localkms.StateDisabled:
		return "DisableKey"
	case localkms.StatePendingDeletion:
		return "ScheduleKeyDeletion"
	case localkms.StateAccessDenied:
		return "PutKeyPolicy"
	case localkms.StateEnabled:
		if prev == localkms.StatePendingDeletion {
			return "CancelKeyDeletion"
		}
		if prev == localkms.StateAccessDenied {
			return "PutKeyPolicy"
		}
		return "EnableKey"
	}
	return ""
}

// pushQueue bounds the events waiting for the in-process handler; a dev
// route call finding it full drops its event (logged): the poll covers it.
const pushQueue = 64

// Push hands a raw EventBridge event to the in-process key-events handler,
// as the rule on keyseal's bus would; false when push is off or the queue
// is full.
func (s *Server) Push(raw []byte) bool {
	if s.pushes == nil {
		return false
	}
	select {
	case s.pushes <- raw:
		return true
	default:
		s.App.Log.Warn("dev push: queue full, event dropped (the poll covers it)")
		return false
	}
}

// pushLoop runs queued events through the key-events handler, one at a
// time, and drains the outbox after each, until ctx ends.
func (s *Server) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case raw := <-s.pushes:
			if _, err := s.KeyEvents.Handle(ctx, raw); err != nil && ctx.Err() == nil {
				s.App.Log.Error("dev push", "err", err)
			}
			s.DrainNow()
		}
	}
}

// pushKeyState emits the CloudTrail-shaped event of a local key's state
// change, when push is on.
func (s *Server) pushKeyState(keyID, prev, next string) {
	call := apiCallFor(prev, next)
	if call == "" || s.pushes == nil {
		return
	}
	s.Push(keyevents.CloudTrailEvent(call, DevKeyARN(keyID), time.Now()))
}
