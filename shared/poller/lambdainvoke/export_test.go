package lambdainvoke

import "time"

// SetRetryDelay fixes the wait before an invoker's one retry.
func SetRetryDelay(i *Invoker, d time.Duration) { i.retryDelay = func() time.Duration { return d } }
