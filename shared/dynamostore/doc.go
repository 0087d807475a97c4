// Package dynamostore is the production keyseal.Store: one DynamoDB table in
// a single-table design. Every state change that carries an audit record is
// one TransactWriteItems with the chain's head and entry (docs/contract.md §4, §7), so a
// tenant row can never move without its audit entry, and an audit entry can
// never be written twice or out of order.
//
// # Table
//
// The schema below is the contract with the CDK stack, which creates the
// production table; CreateTable builds the same table for DynamoDB Local and
// LocalStack.
//
//   - Table keys: partition key "pk" (S), sort key "sk" (S).
//   - Billing: PAY_PER_REQUEST.
//   - Global secondary index "poll-shard": partition key "poll_shard" (S),
//     sort key "tenant_id" (S), projection KEYS_ONLY. It is sparse: only
//     tenant rows carry "poll_shard", so only they appear in it (other
//     items carry "tenant_id", always as S, but never "poll_shard"). The
//     poller lists one shard at a time with it.
//   - Global secondary index "key-ref": partition key "key_ref" (S), sort
//     key "tenant_id" (S), projection KEYS_ONLY. Sparse too: only the
//     rows of BYOK tenants carry "key_ref" ("<provider>#<key id>"), set
//     by the same write that sets the key (register, migrate; deregister
//     drops it). Push sealing finds the tenants of a key with it.
//   - Time to live: attribute "ttl" (N, epoch seconds). Only step-up token,
//     outbox, delivery attempt and webhook tombstone items carry it; audit
//     entries never do.
//   - Stream: NEW_IMAGE (CDK stack), read by the event publisher for the
//     outbox items' INSERTs.
//
// The store calls GetItem, PutItem, UpdateItem, Query (on the table and the
// indexes), TransactWriteItems (whose items need PutItem and UpdateItem) and
// DescribeTable (Ping); AckOutbox, which only the local server's drain
// calls, DeleteItem. Nothing else is ever deleted by keyseal (the write
// role has no DeleteItem): a deleted webhook is a tombstone and old
// delivery attempts age out by TTL.
//
// # Items
//
// Times are RFC 3339 strings in UTC with up to nanosecond precision
// (time.RFC3339Nano), byte slices are B, counters N, flags BOOL. Attributes
// marked optional are absent when empty.
//
// Tenant row (one per tenant with a KMS configuration):
//
//	pk "tenant#<tenant_id>"   sk "config"
//	poll_shard S   two-digit shard, keyseal.ShardOf(tenant_id) as "%02d" ("00".."15")
//	tenant_id S, key_provider S, key_id S,
//	key_access M of S (optional: KeyRef.Access, the provider's access
//	fields such as role_arn and external_id for aws-kms),
//	byok BOOL, key_ref S (only when byok: "<key_provider>#<key_id>"), status S, sealed_since S (optional), seal_reason S (optional),
//	last_verify_error S (optional), last_verified_at S (optional),
//	last_latency_ms N, latency_class S (optional: the poller's class, with
//	hysteresis), active_version N, created_at S, updated_at S,
//	revision N     optimistic lock: every write is conditional on it
//
// TMK version (zero-padded so versions sort numerically):
//
//	pk "tenant#<tenant_id>"   sk "tmk#%08d" (version)
//	tenant_id S, version N, wrapped B (optional: absent once revoked),
//	key_version S (optional: the provider key version that made wrapped),
//	key_provider S, key_id S, key_access M of S (optional),
//	signing_public_key B, created_at S, revoked_at S (optional)
//
// Every version write is conditional on the version itself: a new version
// on attribute_not_exists(pk), a replaced one (a re-wrap, a revoke) on
// attribute_exists(pk) AND attribute_not_exists(revoked_at). A revoked
// version is therefore final: no later write, however stale its read, can
// put the erased blob back.
//
// Audit chain head (absent until the first entry):
//
//	pk "tenant#<tenant_id>"   sk "audit#head"
//	seq N, hash S
//
// Audit entry (append-only; never updated, deleted or given a TTL):
//
//	pk "tenant#<tenant_id>"   sk "audit#%020d" (seq)
//	tenant_id S, seq N, ts S (the record's At from the service's clock,
//	truncated to microseconds), action S, severity S, actor S,
//	details M of S (optional), prev_hash S (empty for seq 1), hash S
//
// Agent:
//
//	pk "tenant#<tenant_id>"   sk "agent#<agent_id>"
//	agent_id S, tenant_id S, name S, key_hash S, created_at S,
//	created_by S, revoked_at S (optional)
//
// Agent key index (written in the same transaction as its agent, so a key
// hash resolves to exactly one agent). It is a full copy of the agent, so
// authenticating an agent key is one read; RevokeAgent sets revoked_at on
// both in one transaction. An item with only tenant_id and agent_id (written
// before the copy) is followed to the agent:
//
//	pk "agentkey#<key_hash>"  sk "agentkey"
//	the agent's attributes: agent_id S, tenant_id S, name S, key_hash S,
//	created_at S, created_by S, revoked_at S (optional)
//
// Step-up token:
//
//	pk "stepup#<token_hash>"  sk "stepup"
//	hash S, subject S, tenant_id S, expires_at S, used BOOL,
//	ttl N   expires_at plus one hour, in epoch seconds
//
// Outbox event (written in the transaction of the change that made it;
// never updated; on AWS published from the stream and reaped by TTL, on the
// local server deleted by the drain once published):
//
//	pk "outbox#<poll shard of tenant_id, %02d>"   sk "%020d#<event id>" (event time, unix nanos)
//	tenant_id S, event_id S, event_type S,
//	event S   the keyseal.Event as JSON, what the publisher sends
//	ttl N     event time plus OutboxTTL (7 days), in epoch seconds
//
// Webhook subscription (the sealed secrets as a list, newest first):
//
//	pk "tenant#<tenant_id>"   sk "webhook#<webhook_id>"
//	tenant_id S, webhook_id S, url S, events L of S, description S
//	(optional), created_at S, disabled BOOL, disabled_at S (optional),
//	disabled_reason S (optional), revision N (optimistic lock),
//	secrets L of M {sealed B, key_version S (optional), created_at S,
//	expires_at S (optional: absent on the current secret)},
//	deleted_at S, ttl N   (only on a tombstone: DeleteWebhook sets both,
//	removes secrets, and every read treats the item as absent; ttl is
//	deleted_at plus DeliveryTTL, 7 days)
//
// Webhook count (one per tenant with subscriptions): written in every
// create's transaction with ADD n 1 conditional on
// attribute_not_exists(n) OR n < 20 (keyseal.MaxWebhooksPerTenant), and
// in every delete's with ADD n -1, so concurrent creates cannot pass the
// limit:
//
//	pk "tenant#<tenant_id>"   sk "webhooks#count"
//	n N
//
// Delivery attempt (ListDeliveries reads the newest MaxDeliveriesKept of a
// live subscription; the rest, and a tombstone's, age out by TTL):
//
//	pk "tenant#<tenant_id>"   sk "whdelivery#<webhook_id>#%020d(unix nanos)#<event_id>#%06d(attempt)"
//	tenant_id S, webhook_id S, event_id S, event_type S, attempt N,
//	at S, outcome S, response_code N (optional), latency_ms N,
//	error S (optional), next_retry_at S (optional),
//	ttl N   at plus DeliveryTTL (7 days), in epoch seconds
//
// Poll shard measurements (one item; each poller group sets its shards'
// attributes with one UpdateItem, the scheduled invocation reads it with
// one GetItem to plan its fan-out):
//
//	pk "poller"   sk "shards"
//	s%02d M {tenants N, work_ns N, measured_at S}   one per measured shard
//
// A tenant's row, versions, audit chain and agents share one partition, so
// reading any of them is one Query, and the entry sort keys order the chain
// by seq ("audit#head" sorts after every entry key).
package dynamostore
