package secretvalue

import "time"

// SetRetryDelay fixes the wait before a client's one retry.
func SetRetryDelay(c *Client, d time.Duration) {
	c.client.RetryDelay = func() time.Duration { return d }
}
