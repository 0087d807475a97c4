package storecheck

import "github.com/keyseal/keyseal/shared/keyseal"

// WaiverAck refuses an acknowledgment missing what the status answer needs,
// and checks the audit record written with it.
func WaiverAck(ack keyseal.WaiverAck, rec keyseal.AuditRecord) error {
	if err := TenantID(ack.TenantID); err != nil {
		return err
	}
	if ack.Version == "" || ack.AcknowledgedBy == "" || ack.AcknowledgedAt.IsZero() {
		return keyseal.Errorf(keyseal.EINVALID, "waiver acknowledgment needs version, acknowledged_by and acknowledged_at")
	}
	return Record(rec)
}
