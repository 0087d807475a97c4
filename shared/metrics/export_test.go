package metrics

import "time"

// SetNow fixes the clock an Emitter stamps its documents with.
func SetNow(e *Emitter, now func() time.Time) { e.now = now }
