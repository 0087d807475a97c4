// Package config reads keyseal's environment (docs/contract.md §8) once at start and
// validates it; a bad value stops the process with a message naming the
// variable.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyseal/keyseal/shared/internal/lazyre"

	"github.com/keyseal/keyseal/shared/waiver"
)

// Config is keyseal's validated configuration.
type Config struct {
	Table    string
	EventBus string
	// EventBusARN is keyseal's bus as customers' forwarding rules target
	// it (KEYSEAL_EVENT_BUS_ARN): GET /admin/tenant-kms/event-forwarding
	// names it.
	EventBusARN string
	// EventOrgID (KEYSEAL_EVENT_ORG_ID), when set, is the AWS Organization
	// whose accounts the bus admits with one statement; the bus policy
	// reconcile then keeps no per-account statements.
	EventOrgID    string
	PlatformKeyID string
	// AuditSigningKeyID is keyseal's KMS key that signs audit checkpoints
	// (ECC_NIST_EDWARDS25519): a key ARN, key id or alias.
	AuditSigningKeyID string

	CacheTTL     time.Duration
	SessionTTL   time.Duration
	PollInterval time.Duration
	KMSTimeout   time.Duration
	// PollConcurrency bounds the tenants one sweep checks at once.
	PollConcurrency int
	// PollWorker is the poller's worker function (a name or ARN), set on
	// the scheduled poller only: it then fans the shards out to parallel
	// invocations of it when one cannot sweep them in time (shared/poller).
	PollWorker string
	// WebhookQueueURL is the SQS queue of webhook deliveries (events from
	// the bus rule and retry jobs), WebhookDLQURL its dead-letter queue:
	// the webhook-deliver Lambda reads the first and sends to both.
	WebhookQueueURL string
	WebhookDLQURL   string
	// OutboxInterval is how often the local server drains the outbox (on
	// AWS the table's stream invokes the publisher instead).
	OutboxInterval time.Duration
	// WebhookRetryScale, in (0, 1], multiplies the delays and the window
	// of the webhook retry schedule in the local server (KEYSEAL_WEBHOOK_RETRY_SCALE,
	// default 1: production's 5 s, 5 min, 30 min, ...), for rehearsals.
	WebhookRetryScale float64

	AdminJWKSURL     string
	AdminJWKS        string
	AdminIssuer      string
	AdminAudience    string
	AdminTenantClaim string

	StepUpMaxAge    time.Duration
	StepUpACRValues []string

	// LogLevel is debug, info, warn or error.
	LogLevel string
	// Stage names the environment (dev, staging, prod). It is the Stage
	// dimension of every CloudWatch metric, so each environment's alarms
	// see only its own functions.
	Stage string

	// ServicePrincipal is the AWS principal the key policy keyseal asks
	// customers for names (GET /admin/tenant-kms/key-policy): an IAM role
	// ARN or an account root ARN. The stack sets keyseal's account root:
	// see README, "The key policy".
	ServicePrincipal string
	// Waiver is the legal waiver tenants acknowledge: the embedded text, or
	// KEYSEAL_WAIVER_FILE's when set (read and checked here, at start).
	Waiver waiver.Waiver

	// GCP configures the gcp-kms provider; the zero value leaves it off.
	GCP GCP
	// Azure configures the azure-kv provider; the zero value leaves it off.
	Azure Azure
}

// GCP is keyseal's own Google identity. The provider is on when
// Credentials is set.
type GCP struct {
	// Credentials is a Google credentials JSON (KEYSEAL_GCP_CREDENTIALS):
	// on AWS the external-account (workload identity federation) config,
	// so no long-lived Google key exists; a service-account key file's
	// content also works.
	Credentials string
	// ServiceAccount is the email keyseal acts as, the member customers
	// grant (KEYSEAL_GCP_SERVICE_ACCOUNT). When unset it is read from
	// Credentials: the external account's service_account_impersonation_url
	// or the key file's client_email.
	ServiceAccount string
}

// Enabled says whether this process runs the gcp-kms provider.
func (g GCP) Enabled() bool { return g.Credentials != "" }

// Azure is keyseal's own app registration in Entra ID. The provider is on
// when ClientID is set; TenantID and exactly one secret source are then
// required.
type Azure struct {
	TenantID string // KEYSEAL_AZURE_TENANT_ID: keyseal's home tenant, the default for keys naming none
	ClientID string // KEYSEAL_AZURE_CLIENT_ID: the app registration's application (client) id
	// ClientSecretARN is the Secrets Manager secret holding the client
	// secret (KEYSEAL_AZURE_CLIENT_SECRET_ARN), read at start.
	ClientSecretARN string
	// ClientSecret is the secret itself (KEYSEAL_AZURE_CLIENT_SECRET), for
	// local runs only: a Lambda's environment is readable by anyone who can
	// read its configuration.
	ClientSecret string
}

// Enabled says whether this process runs the azure-kv provider.
func (a Azure) Enabled() bool { return a.ClientID != "" }

// Getenv reads one variable (os.Getenv, or a map in tests).
type Getenv func(string) string

// Load parses and validates every variable it knows. Required-ness depends
// on the process: see RequireAWS and RequireAdmin.
func Load(getenv Getenv) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		Table:             getenv("KEYSEAL_TABLE"),
		EventBus:          getenv("KEYSEAL_EVENT_BUS"),
		EventBusARN:       getenv("KEYSEAL_EVENT_BUS_ARN"),
		EventOrgID:        getenv("KEYSEAL_EVENT_ORG_ID"),
		WebhookQueueURL:   getenv("KEYSEAL_WEBHOOK_QUEUE_URL"),
		WebhookDLQURL:     getenv("KEYSEAL_WEBHOOK_DLQ_URL"),
		PlatformKeyID:     getenv("KEYSEAL_PLATFORM_KEY_ID"),
		AuditSigningKeyID: getenv("KEYSEAL_AUDIT_SIGNING_KEY_ID"),
		CacheTTL:          p.duration("KEYSEAL_TMK_CACHE_TTL", 5*time.Minute, time.Second, time.Hour),
		SessionTTL:        p.duration("KEYSEAL_SESSION_TTL", 5*time.Minute, 10*time.Second, 5*time.Minute),
		PollInterval:      p.duration("KEYSEAL_POLL_INTERVAL", 30*time.Second, 10*time.Millisecond, time.Hour),
		KMSTimeout:        p.duration("KEYSEAL_KMS_TIMEOUT", 5*time.Second, 10*time.Millisecond, time.Minute),
		PollConcurrency:   p.integer("KEYSEAL_POLL_CONCURRENCY", 64, 1, 1024),
		PollWorker:        getenv("KEYSEAL_POLL_WORKER"),
		OutboxInterval:    p.duration("KEYSEAL_OUTBOX_INTERVAL", time.Second, 10*time.Millisecond, time.Minute),
		WebhookRetryScale: p.fraction("KEYSEAL_WEBHOOK_RETRY_SCALE", 1),
		AdminJWKSURL:      getenv("KEYSEAL_ADMIN_JWKS_URL"),
		AdminJWKS:         getenv("KEYSEAL_ADMIN_JWKS"),
		AdminIssuer:       getenv("KEYSEAL_ADMIN_ISSUER"),
		AdminAudience:     getenv("KEYSEAL_ADMIN_AUDIENCE"),
		AdminTenantClaim:  p.str("KEYSEAL_ADMIN_TENANT_CLAIM", "tenant_id"),
		StepUpMaxAge:      p.duration("KEYSEAL_STEPUP_MAX_AGE", 300*time.Second, time.Second, 24*time.Hour),
		StepUpACRValues:   strings.Fields(strings.ReplaceAll(p.str("KEYSEAL_STEPUP_ACR_VALUES", "mfa"), ",", " ")),
		LogLevel:          p.str("KEYSEAL_LOG_LEVEL", "info"),
		Stage:             p.str("KEYSEAL_STAGE", "local"),
		ServicePrincipal:  getenv("KEYSEAL_SERVICE_PRINCIPAL"),
		Waiver:            waiver.Embedded(),
		GCP:               GCP{Credentials: getenv("KEYSEAL_GCP_CREDENTIALS"), ServiceAccount: getenv("KEYSEAL_GCP_SERVICE_ACCOUNT")},
		Azure: Azure{TenantID: getenv("KEYSEAL_AZURE_TENANT_ID"), ClientID: getenv("KEYSEAL_AZURE_CLIENT_ID"),
			ClientSecretARN: getenv("KEYSEAL_AZURE_CLIENT_SECRET_ARN"), ClientSecret: getenv("KEYSEAL_AZURE_CLIENT_SECRET")},
	}
	p.errs = append(p.errs, c.GCP.load()...)
	p.errs = append(p.errs, c.Azure.check()...)
	if c.ServicePrincipal != "" && !validServicePrincipal(c.ServicePrincipal) {
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_SERVICE_PRINCIPAL=%q: want an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME) or an account root (arn:aws:iam::ACCOUNT:root)", c.ServicePrincipal))
	}
	if path := getenv("KEYSEAL_WAIVER_FILE"); path != "" {
		w, err := readWaiver(path)
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("KEYSEAL_WAIVER_FILE=%q: %w", path, err))
		}
		c.Waiver = w
	}
	if c.PollWorker != "" && !lambdaFunctionRef(c.PollWorker) {
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_POLL_WORKER=%q: want a Lambda function name (letters, digits, - and _) or its ARN", c.PollWorker))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if !validStage(c.Stage) {
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_STAGE=%q: want 1-255 characters, not only spaces, no control characters", c.Stage))
	}
	if c.EventBusARN != "" && !isEventBusARN(c.EventBusARN) {
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_EVENT_BUS_ARN=%q: want an event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)", c.EventBusARN))
	}
	if c.EventOrgID != "" && !isOrgID(c.EventOrgID) {
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_EVENT_ORG_ID=%q: want an AWS Organization id (o- and 10 to 32 lowercase letters or digits)", c.EventOrgID))
	}
	if c.AuditSigningKeyID != "" && !kmsKeyRef.MatchString(c.AuditSigningKeyID) {
		p.errs = append(p.errs, fmt.Errorf("KEYSEAL_AUDIT_SIGNING_KEY_ID=%q: want a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY_ID), a key id or alias/NAME", c.AuditSigningKeyID))
	}
	for name, v := range map[string]string{"KEYSEAL_WEBHOOK_QUEUE_URL": c.WebhookQueueURL, "KEYSEAL_WEBHOOK_DLQ_URL": c.WebhookDLQURL} {
		if v != "" && !queueURL.MatchString(v) {
			p.errs = append(p.errs, fmt.Errorf("%s=%q: want an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", name, v))
		}
	}
	if c.WebhookQueueURL != "" && c.WebhookQueueURL == c.WebhookDLQURL {
		p.errs = append(p.errs, errors.New("KEYSEAL_WEBHOOK_DLQ_URL must be another queue than KEYSEAL_WEBHOOK_QUEUE_URL"))
	}
	if c.AdminJWKSURL != "" && c.AdminJWKS != "" {
		p.errs = append(p.errs, errors.New("set only one of KEYSEAL_ADMIN_JWKS_URL and KEYSEAL_ADMIN_JWKS"))
	}
	return c, errors.Join(p.errs...)
}

// validServicePrincipal accepts an IAM role ARN (with an optional path)
// or an account root, in any AWS partition:
// arn:aws(-[a-z]+)*:iam::ACCOUNT(12 digits):(root|role/NAME), NAME 1-512
// of [A-Za-z0-9_+=,.@/-]. A parser, not a regexp: the counted repetition
// compiles to a 356 KB program in 1.3 ms, at every admin Lambda's init.
func validServicePrincipal(s string) bool {
	rest, ok := strings.CutPrefix(s, "arn:")
	partition, rest, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || !validPartition(partition) {
		return false
	}
	rest, ok = strings.CutPrefix(rest, "iam::")
	if !ok || len(rest) < 13 || rest[12] != ':' || strings.ContainsFunc(rest[:12], func(r rune) bool { return r < '0' || r > '9' }) {
		return false
	}
	if resource := rest[13:]; resource == "root" {
		return true
	} else if name, ok := strings.CutPrefix(resource, "role/"); ok && len(name) >= 1 && len(name) <= 512 {
		return !strings.ContainsFunc(name, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_+=,.@/-", r))
		})
	}
	return false
}

// validPartition: "aws", then any number of "-" and lower-case letters.
func validPartition(p string) bool {
	first, rest, dash := strings.Cut(p, "-")
	if first != "aws" {
		return false
	}
	if !dash {
		return true
	}
	for part := range strings.SplitSeq(rest, "-") {
		if part == "" || strings.ContainsFunc(part, func(r rune) bool { return r < 'a' || r > 'z' }) {
			return false
		}
	}
	return true
}

// Checked without regular expressions, which every process would build
// at init whether the variables are set or not.

// isEventBusARN reports whether s is an EventBridge event bus ARN in any
// partition and region ("local" too: dev mode's nominal bus).
func isEventBusARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || !strings.HasPrefix(p[1], "aws") || p[2] != "events" || !onlyOf(p[3], "abcdefghijklmnopqrstuvwxyz0123456789-") {
		return false
	}
	name, ok := strings.CutPrefix(p[5], "event-bus/")
	return len(p[4]) == 12 && onlyOf(p[4], "0123456789") && ok && len(name) <= 256 &&
		onlyOf(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
}

// isOrgID reports whether s is an AWS Organization id: o- and 10 to 32
// lowercase letters or digits.
func isOrgID(s string) bool {
	id, ok := strings.CutPrefix(s, "o-")
	return ok && len(id) >= 10 && len(id) <= 32 && onlyOf(id, "abcdefghijklmnopqrstuvwxyz0123456789")
}

// onlyOf reports whether s is non-empty and made of chars only.
func onlyOf(s, chars string) bool {
	return s != "" && strings.Trim(s, chars) == ""
}

// readWaiver reads and parses a waiver file, refusing one over
// waiver.MaxSize before reading it all.
func readWaiver(path string) (waiver.Waiver, error) {
	f, err := os.Open(path)
	if err != nil {
		return waiver.Waiver{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, waiver.MaxSize+1))
	if err != nil {
		return waiver.Waiver{}, err
	}
	return waiver.Parse(data)
}

// validStage accepts what CloudWatch takes as a dimension value, with a
// bound far below its 1024 characters: a stage is a short name.
func validStage(s string) bool {
	if len(s) > 255 || strings.TrimSpace(s) == "" || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// RequireAWS checks what every Lambda needs in AWS: the table and the
// platform key.
func (c Config) RequireAWS() error {
	return required(map[string]string{"KEYSEAL_TABLE": c.Table, "KEYSEAL_PLATFORM_KEY_ID": c.PlatformKeyID})
}

// kmsKeyRef is what KMS takes as a KeyId: a key or alias ARN, a key id
// (multi-region ones too) or an alias name.
var kmsKeyRef = lazyre.New(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+)$`)

// RequireAuditSigning checks what signing audit checkpoints needs (every
// Lambda that appends to the chain).
func (c Config) RequireAuditSigning() error {
	return required(map[string]string{"KEYSEAL_AUDIT_SIGNING_KEY_ID": c.AuditSigningKeyID})
}

// RequireEvents checks what publishing events needs (the event publisher).
func (c Config) RequireEvents() error {
	return required(map[string]string{"KEYSEAL_EVENT_BUS": c.EventBus})
}

// RequireEventForwarding checks what GET /admin/tenant-kms/event-forwarding
// needs (the admin Lambda): the bus ARN customers target.
func (c Config) RequireEventForwarding() error {
	if c.EventBusARN == "" {
		return errors.New("KEYSEAL_EVENT_BUS_ARN is required (keyseal's event bus, the target of the customers' forwarding rules)")
	}
	return nil
}

// queueURL is an SQS queue URL: https or, for LocalStack, http on any
// host, then the account id and the queue name.
var queueURL = lazyre.New(`^https?://[A-Za-z0-9.:-]+/[0-9]{12}/[A-Za-z0-9_-]{1,80}$`)

// RequireWebhookQueues checks what delivering webhooks from SQS needs
// (the webhook-deliver Lambda).
func (c Config) RequireWebhookQueues() error {
	return required(map[string]string{"KEYSEAL_WEBHOOK_QUEUE_URL": c.WebhookQueueURL, "KEYSEAL_WEBHOOK_DLQ_URL": c.WebhookDLQURL})
}

// RequireServicePrincipal checks what the admin functions need to answer
// the key-policy route and cannot_access_cmk.
func (c Config) RequireServicePrincipal() error {
	if c.ServicePrincipal == "" {
		return errors.New("KEYSEAL_SERVICE_PRINCIPAL is required (the principal customers grant in their key policy)")
	}
	return nil
}

// RequireAdmin checks what verifying admin JWTs needs.
func (c Config) RequireAdmin() error {
	err := required(map[string]string{"KEYSEAL_ADMIN_ISSUER": c.AdminIssuer, "KEYSEAL_ADMIN_AUDIENCE": c.AdminAudience})
	if c.AdminJWKSURL == "" && c.AdminJWKS == "" {
		err = errors.Join(err, errors.New("KEYSEAL_ADMIN_JWKS_URL or KEYSEAL_ADMIN_JWKS is required"))
	}
	return err
}

func required(vars map[string]string) error {
	var errs []error
	for _, name := range []string{"KEYSEAL_TABLE", "KEYSEAL_PLATFORM_KEY_ID", "KEYSEAL_AUDIT_SIGNING_KEY_ID", "KEYSEAL_EVENT_BUS", "KEYSEAL_WEBHOOK_QUEUE_URL", "KEYSEAL_WEBHOOK_DLQ_URL", "KEYSEAL_ADMIN_ISSUER", "KEYSEAL_ADMIN_AUDIENCE"} {
		if v, ok := vars[name]; ok && v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	return errors.Join(errs...)
}

type parser struct {
	getenv Getenv
	errs   []error
}

func (p *parser) str(name, def string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	return def
}

func (p *parser) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s=%q: not a Go duration (examples: 30s, 5m)", name, v))
		return def
	}
	if d < lo || d > hi {
		p.errs = append(p.errs, fmt.Errorf("%s=%s: must be between %s and %s", name, v, lo, hi))
		return def
	}
	return d
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.errs = append(p.errs, fmt.Errorf("%s=%q: want an integer between %d and %d", name, v, lo, hi))
		return def
	}
	return n
}

// fraction reads a number in (0, 1].
func (p *parser) fraction(name string, def float64) float64 {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		p.errs = append(p.errs, fmt.Errorf("%s=%q: want a number greater than 0 and at most 1", name, v))
		return def
	}
	return f
}

// lambdaFunctionRef reports whether s can name a Lambda function: a name
// of letters, digits, hyphens and underscores, or an ARN of one (up to
// 140 characters, Lambda's limit for FunctionName).
func lambdaFunctionRef(s string) bool {
	name := s
	if rest, ok := strings.CutPrefix(s, "arn:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) < 6 || parts[1] != "lambda" || parts[4] != "function" {
			return false
		}
		name = parts[5]
	}
	if name == "" || len(s) > 140 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
