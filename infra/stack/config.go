// Package stack is keyseal's CDK stack: one construct per concern (data,
// keys, events, functions, api, poller, alarms), each granting its own
// least-privilege permissions, composed by New for one environment.
package stack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

// ContextKey is the cdk.json context key holding the per-environment
// settings; EnvKey selects one (`cdk synth -c env=prod`).
const (
	ContextKey  = "keyseal:environments"
	EnvKey      = "env"
	AssetDirKey = "keyseal:assetDir"
)

// Config is one environment's settings, read from cdk.json context.
type Config struct {
	// Name is the environment (dev, staging, prod); it prefixes resource
	// names and is the Stage dimension of keyseal's metrics.
	Name    string `json:"-"`
	Account string `json:"account"`
	Region  string `json:"region"`
	// LogRetentionDays keeps function and API access logs this long.
	LogRetentionDays int `json:"logRetentionDays"`
	// AlarmEmail, when set, is subscribed to the alarm topic.
	AlarmEmail string `json:"alarmEmail"`
	// Retain keeps the table, key and logs when the stack is deleted.
	Retain             bool `json:"retain"`
	PITR               bool `json:"pointInTimeRecovery"`
	DeletionProtection bool `json:"deletionProtection"`
	// ThrottleRate and ThrottleBurst bound the API stage (requests/s).
	ThrottleRate  float64 `json:"throttleRate"`
	ThrottleBurst float64 `json:"throttleBurst"`

	// Admin identity provider (docs/contract.md §3).
	AdminJWKSURL     string `json:"adminJwksUrl"`
	AdminIssuer      string `json:"adminIssuer"`
	AdminAudience    string `json:"adminAudience"`
	AdminTenantClaim string `json:"adminTenantClaim"`
	StepUpACRValues  string `json:"stepUpAcrValues"`

	// EventOrgID, when set, admits every account of this AWS Organization
	// to put events on keyseal's bus with one statement (aws:PrincipalOrgID)
	// instead of one statement per customer account (buspolicy.go).
	EventOrgID string `json:"eventOrgId"`

	// Clouds: keyseal's GCP and Azure identity (optional; clouds.go).
	Clouds

	// AssetDir holds bin/<function>/bootstrap, built by `make build`.
	AssetDir string `json:"-"`
}

// Environments lists the environment names in a context value.
func Environments(raw any) []string {
	m, _ := raw.(map[string]any)
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// LoadConfig reads environment env from the context value raw (what
// app.Node().TryGetContext(ContextKey) returns) and checks it.
func LoadConfig(raw any, env, assetDir string) (Config, error) {
	all, ok := raw.(map[string]any)
	if !ok {
		return Config{}, fmt.Errorf("cdk.json context %q is missing or not an object", ContextKey)
	}
	one, ok := all[env]
	if !ok {
		return Config{}, fmt.Errorf("unknown environment %q: cdk.json defines %s (pick one with -c env=NAME)", env, strings.Join(Environments(raw), ", "))
	}
	b, err := json.Marshal(one)
	if err != nil {
		return Config{}, err
	}
	c := Config{Name: env, AssetDir: assetDir, AdminTenantClaim: "tenant_id", StepUpACRValues: "mfa", ThrottleRate: 100, ThrottleBurst: 200}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("environment %s: %w", env, err)
	}
	var missing []string
	for name, v := range map[string]string{"region": c.Region, "adminJwksUrl": c.AdminJWKSURL, "adminIssuer": c.AdminIssuer, "adminAudience": c.AdminAudience} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return Config{}, fmt.Errorf("environment %s: %s required", env, strings.Join(missing, ", "))
	}
	if c.EventOrgID != "" && !orgIDPattern.MatchString(c.EventOrgID) {
		return Config{}, fmt.Errorf("environment %s: eventOrgId %q is not an AWS Organization id (o- and 10 to 32 lowercase letters or digits, as `aws organizations describe-organization` shows it)", env, c.EventOrgID)
	}
	if errs := c.Clouds.check(); len(errs) > 0 {
		return Config{}, fmt.Errorf("environment %s: %s", env, strings.Join(errs, "; "))
	}
	if errs := c.Clouds.checkBuild(env, assetDir); len(errs) > 0 {
		return Config{}, fmt.Errorf("environment %s: %s", env, strings.Join(errs, "; "))
	}
	if _, ok := retentions[c.LogRetentionDays]; !ok {
		return Config{}, fmt.Errorf("environment %s: logRetentionDays %d is not a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, 180, 365, ...)", env, c.LogRetentionDays)
	}
	return c, nil
}

// orgIDPattern is an AWS Organization id.
var orgIDPattern = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)

var retentions = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS,
	365: awslogs.RetentionDays_ONE_YEAR, 731: awslogs.RetentionDays_TWO_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// Retention is the log retention of the environment.
func (c Config) Retention() awslogs.RetentionDays { return retentions[c.LogRetentionDays] }

// RemovalPolicy is what happens to stateful resources when the stack goes.
func (c Config) RemovalPolicy() awscdk.RemovalPolicy {
	if c.Retain {
		return awscdk.RemovalPolicy_RETAIN
	}
	return awscdk.RemovalPolicy_DESTROY
}

// Prefix names resources of this environment.
func (c Config) Prefix(name string) string { return "keyseal-" + c.Name + "-" + name }
