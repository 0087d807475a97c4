package faultproxy

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The same Proxy also stands between keyseal and DynamoDB Local: requests
// whose X-Amz-Target names DynamoDB (DynamoDB_20120810.<Operation>) are
// matched against store rules instead of the KMS key rules, so one
// package rehearses both dependencies. The faults a store rule can apply
// besides Drop and ServerError:
const (
	// Throttle answers 400 ThrottlingException, DynamoDB's answer to a
	// request rate over what the table or account allows.
	Throttle Fault = "throttle"
	// ThroughputExceeded answers 400 ProvisionedThroughputExceededException,
	// a provisioned table over its capacity.
	ThroughputExceeded Fault = "throughput"
	// DropAnswer forwards the request, waits for DynamoDB's answer and
	// drops the connection instead of passing it on: the write committed,
	// the client never hears so.
	DropAnswer Fault = "drop-answer"
)

// validStore reports whether f can be a store rule's fault.
func (f Fault) validStore() bool {
	switch f {
	case Pass, Drop, ServerError, Throttle, ThroughputExceeded, DropAnswer:
		return true
	}
	return false
}

// StoreRule selects DynamoDB requests and says what to do with them.
type StoreRule struct {
	// Operation is the DynamoDB operation (GetItem, TransactWriteItems,
	// ...); "" matches every operation.
	Operation string
	// Table matches requests naming this table (TableName, or any item of
	// a transaction); "" matches every table.
	Table string
	// Fault applies to a matching request the rule fires for, after Delay.
	Fault Fault
	// Delay holds a request the rule fires for before its fault (or its
	// forwarding, for Pass): a slow store.
	Delay time.Duration
	// Rate is the fraction of matching requests the rule fires for; 0 (or
	// 1 and above) fires for every one.
	Rate float64
	// Times stops the rule after it fired this many times; 0 never stops.
	Times int
}

// storeRule is a StoreRule with how often it has fired.
type storeRule struct {
	StoreRule
	fired int
}

// AddStoreRule adds r after the store rules already set. A request is
// matched against them in order and the first that fires applies; the
// others are not rolled. It panics on a fault a store rule cannot apply
// (Deny is KMS's), as Set does.
func (p *Proxy) AddStoreRule(r StoreRule) {
	if !r.Fault.validStore() {
		panic(fmt.Sprintf("faultproxy: fault %q is not a store fault", string(r.Fault)))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store = append(p.store, &storeRule{StoreRule: r})
}

// Injected returns how many requests each fault was applied to so far
// (store rules; Pass counts requests only delayed).
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Fault]int, len(p.injected))
	for f, n := range p.injected {
		out[f] = n
	}
	return out
}

// storeOperation returns the DynamoDB operation of a request, "" when the
// request is not DynamoDB's.
func storeOperation(r *http.Request) string {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if !ok {
		return ""
	}
	return op
}

// requestTables returns the tables a DynamoDB request names.
func requestTables(body []byte) []string {
	type named struct {
		TableName string `json:"TableName"`
	}
	var req struct {
		TableName     string `json:"TableName"`
		TransactItems []map[string]named
		RequestItems  map[string]json.RawMessage
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	var out []string
	if req.TableName != "" {
		out = append(out, req.TableName)
	}
	for _, it := range req.TransactItems {
		for _, n := range it {
			out = append(out, n.TableName)
		}
	}
	for t := range req.RequestItems {
		out = append(out, t)
	}
	return out
}

// fire returns the rule that fires for a request, or nil.
func (p *Proxy) fire(op string, tables []string) *StoreRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.store {
		if r.Operation != "" && r.Operation != op || r.Table != "" && !slices.Contains(tables, r.Table) {
			continue
		}
		if r.Times > 0 && r.fired >= r.Times {
			continue
		}
		if r.Rate > 0 && r.Rate < 1 && rand.Float64() >= r.Rate {
			continue
		}
		r.fired++
		if p.injected == nil {
			p.injected = map[Fault]int{}
		}
		p.injected[r.Fault]++
		rule := r.StoreRule
		return &rule
	}
	return nil
}

// serveStore applies the store rules to one DynamoDB request.
func (p *Proxy) serveStore(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	rule := p.fire(op, requestTables(body))
	if rule == nil {
		p.forward.ServeHTTP(w, r)
		return
	}
	if rule.Delay > 0 {
		select {
		case <-p.after(rule.Delay):
		case <-r.Context().Done():
			return
		case <-p.done:
			drop(w)
			return
		}
	}
	switch rule.Fault {
	case Throttle:
		writeStoreError(w, http.StatusBadRequest, "com.amazon.coral.availability#ThrottlingException",
			"Rate of requests exceeds the allowed throughput. (injected by faultproxy)")
	case ThroughputExceeded:
		writeStoreError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
			"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API. (injected by faultproxy)")
	case ServerError:
		writeStoreError(w, http.StatusInternalServerError, "com.amazonaws.dynamodb.v20120810#InternalServerError",
			"Internal server error (injected by faultproxy)")
	case Drop:
		drop(w)
	case DropAnswer:
		p.forward.ServeHTTP(discard{header: http.Header{}}, r)
		drop(w)
	default:
		p.forward.ServeHTTP(w, r)
	}
}

// writeStoreError answers as DynamoDB's JSON 1.0 protocol reports an
// error: the shape "__type" names (namespace#Code) is what the SDK decodes
// into the error code, and X-Amz-Crc32 is the body's checksum, which the
// SDK's DynamoDB client verifies on every answer.
func writeStoreError(w http.ResponseWriter, status int, typ, message string) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{typ, message})
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-RequestId", requestID())
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// discard is a ResponseWriter that throws the upstream's answer away.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
