package lambdainvoke

import "time"

// SetRetryDelay fixes the wait before an invoker's one retry.
func SetRetryDelay(i *Invoker, d time.Duration) {
	i.client.RetryDelay = func() time.Duration { return d }
}
