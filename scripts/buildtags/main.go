// Command buildtags prints the go build tags of one environment's
// Lambdas, comma-separated, for `make build ENV=x`: lambda.norpc, plus
// keyseal_nogcp when x's cdk.json context configures no GCP identity
// (gcpCredentials, gcpServiceAccount) and keyseal_noazure when it
// configures no Azure one (azureClientId, azureTenantId,
// azureClientSecretArn). A provider the environment does not configure
// stays off in its Lambdas (shared/config), so its SDK would only cost
// binary size and package init at every cold start (shared/app/clouds).
//
//	go run ./scripts/buildtags -env prod   # lambda.norpc,keyseal_nogcp,keyseal_noazure
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// The tags shared/app/clouds knows.
const (
	TagNoGCP   = "keyseal_nogcp"
	TagNoAzure = "keyseal_noazure"
)

func main() {
	env := flag.String("env", "dev", "the environment under keyseal:environments")
	path := flag.String("cdk", "cdk.json", "the CDK app's cdk.json")
	flag.Parse()
	raw, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildtags:", err)
		os.Exit(1)
	}
	tags, err := Tags(raw, *env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildtags: %s: %v\n", *path, err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(tags, ","))
}

// environment is the part of one environment's context that decides
// the tags: the keys infra/stack.Clouds reads, by the same JSON names.
type environment struct {
	GCPCredentials       json.RawMessage `json:"gcpCredentials"`
	GCPServiceAccount    string          `json:"gcpServiceAccount"`
	AzureClientID        string          `json:"azureClientId"`
	AzureTenantID        string          `json:"azureTenantId"`
	AzureClientSecretARN string          `json:"azureClientSecretArn"`
}

// Tags reads environment env of cdk.json's "keyseal:environments"
// context and returns its build tags. Any GCP (Azure) key set, even a
// malformed one (synth rejects it), keeps that provider in the build:
// a tag is added only when the environment certainly does not use it.
func Tags(cdkJSON []byte, env string) ([]string, error) {
	var file struct {
		Context map[string]json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(cdkJSON, &file); err != nil {
		return nil, fmt.Errorf("not a cdk.json: %w", err)
	}
	var envs map[string]json.RawMessage
	if err := json.Unmarshal(file.Context["keyseal:environments"], &envs); err != nil || envs == nil {
		return nil, fmt.Errorf(`context "keyseal:environments" is missing or not an object`)
	}
	one, ok := envs[env]
	if !ok {
		names := make([]string, 0, len(envs))
		for n := range envs {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown environment %q: cdk.json defines %s (make build ENV=NAME)", env, strings.Join(names, ", "))
	}
	var e environment
	if err := json.Unmarshal(one, &e); err != nil {
		return nil, fmt.Errorf("environment %s: %w", env, err)
	}
	tags := []string{"lambda.norpc"}
	if len(e.GCPCredentials) == 0 && e.GCPServiceAccount == "" {
		tags = append(tags, TagNoGCP)
	}
	if e.AzureClientID == "" && e.AzureTenantID == "" && e.AzureClientSecretARN == "" {
		tags = append(tags, TagNoAzure)
	}
	return tags, nil
}
