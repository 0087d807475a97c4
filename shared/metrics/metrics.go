// Package metrics writes CloudWatch metrics as Embedded Metric Format (EMF)
// documents: one JSON object per line on the Lambda's stdout, which
// CloudWatch Logs turns into metrics without a PutMetricData call on the
// request path or an agent to run.
//
// Every document is in the namespace "keyseal" with the single dimension
// set [["Stage"]]; the alarms in infra/ are written against exactly the
// names and units declared here.
package metrics

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric keyseal emits.
const Namespace = "keyseal"

// StageDimension is the one dimension of every metric: the environment
// (KEYSEAL_STAGE), so the alarms of staging and prod never mix.
const StageDimension = "Stage"

// MaxValues is the most values CloudWatch accepts for one metric in one EMF
// document; Emit splits longer series over several documents.
const MaxValues = 100

// Metric names: the contract with the CloudWatch alarms.
const (
	// SealedTenants (Count) is emitted once per poller sweep: the tenants
	// that ended the sweep sealed or revoked. Alarm: Maximum > 0.
	SealedTenants = "SealedTenants"
	// KMSLatency (Milliseconds) is one value per successful live verify
	// (wrap plus unwrap) of a sweep. Alarm: Average > 200 for 5 minutes.
	KMSLatency = "KMSLatency"
	// KMSFailures (Count) is the tenants whose live verify failed in a
	// sweep, and 1 for each failed TMK unwrap on the session path. Alarm:
	// Sum > 10 in 5 minutes.
	KMSFailures = "KMSFailures"
	// KeyRotationAgeDays (None) is emitted once per sweep with at least one
	// successful verify: the age in (fractional) days of the oldest active
	// TMK version among the verified tenants. Alarm: Maximum > 90.
	KeyRotationAgeDays = "KeyRotationAgeDays"
	// KeyDeliveryFailures (Count) is 1 for each webhook delivery that
	// exhausted its attempts (3 days of retries) and was dead-lettered.
	// Alarm: Sum > 0.
	KeyDeliveryFailures = "KeyDeliveryFailures"
	// PollDispatchErrors (Count) is emitted once per poller minute that
	// fans out: the worker invokes that failed (their groups' tenants miss
	// that minute's sweeps; 0 when every group was queued). Alarm: Sum > 0
	// in 5 minutes.
	PollDispatchErrors = "PollDispatchErrors"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units keyseal's metrics use.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	None         Unit = "None"
)

// Value is one metric's values for one Emit call. One value is written as a
// number, several as an array (CloudWatch counts each as a sample).
type Value struct {
	Name   string
	Unit   Unit
	Values []float64
}

// Emitter writes EMF documents to a writer. It is safe for concurrent use:
// each document is one Write, so lines never interleave. A nil *Emitter
// emits nothing, which is what tests and the local server use.
type Emitter struct {
	mu    *sync.Mutex // shared by the copies With returns: one writer, one lock
	w     io.Writer
	stage string
	props map[string]string
	now   func() time.Time
}

// New returns an Emitter writing to w (os.Stdout in a Lambda) with the
// Stage dimension set to stage.
func New(w io.Writer, stage string) *Emitter {
	return &Emitter{mu: new(sync.Mutex), w: w, stage: stage, now: time.Now}
}

// With returns an Emitter that also writes key: value in every document, as
// a property that is not a dimension (the function name, say, for Logs
// Insights queries). A property never overrides "Stage", "_aws" or a metric
// of the same document.
func (e *Emitter) With(key, value string) *Emitter {
	if e == nil {
		return nil
	}
	c := *e
	c.props = make(map[string]string, len(e.props)+1)
	for k, v := range e.props {
		c.props[k] = v
	}
	c.props[key] = value
	return &c
}

// Emit writes values as one EMF document, or several when a metric has more
// than MaxValues values (the i-th document carries the i-th hundred of each
// metric that has that many). Values of a repeated name are merged under
// the first one's unit; NaN and infinities, which JSON cannot carry, are
// dropped, as are metrics left with no value. Write errors are dropped too:
// metrics are best effort, and a Lambda whose stdout fails has lost its logs
// as well.
func (e *Emitter) Emit(values ...Value) {
	if e == nil {
		return
	}
	series := merge(values)
	if len(series) == 0 {
		return
	}
	docs := 0
	for _, s := range series {
		docs = max(docs, (len(s.Values)+MaxValues-1)/MaxValues)
	}
	ts := e.now().UnixMilli()
	for i := range docs {
		var chunk []Value
		for _, s := range series {
			lo := i * MaxValues
			if lo >= len(s.Values) {
				continue
			}
			chunk = append(chunk, Value{Name: s.Name, Unit: s.Unit, Values: s.Values[lo:min(lo+MaxValues, len(s.Values))]})
		}
		line := e.document(ts, chunk)
		e.mu.Lock()
		_, _ = e.w.Write(line)
		e.mu.Unlock()
	}
}

// merge drops non-finite values and empty metrics and merges repeated names,
// keeping the callers' order.
func merge(values []Value) []Value {
	var out []Value
	for _, v := range values {
		finite := make([]float64, 0, len(v.Values))
		for _, x := range v.Values {
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				finite = append(finite, x)
			}
		}
		if len(finite) == 0 {
			continue
		}
		if i := slices.IndexFunc(out, func(o Value) bool { return o.Name == v.Name }); i >= 0 {
			out[i].Values = append(out[i].Values, finite...)
			continue
		}
		out = append(out, Value{Name: v.Name, Unit: v.Unit, Values: finite})
	}
	return out
}

// The "_aws" metadata object of an EMF document.
type awsMetadata struct {
	Timestamp         int64              `json:"Timestamp"`
	CloudWatchMetrics []metricDirectives `json:"CloudWatchMetrics"`
}

type metricDirectives struct {
	Namespace  string             `json:"Namespace"`
	Dimensions [][]string         `json:"Dimensions"`
	Metrics    []metricDefinition `json:"Metrics"`
}

type metricDefinition struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

// document renders one EMF line: "_aws" first (the part a reader looks
// for), then the properties, the Stage dimension and the metric values.
func (e *Emitter) document(ts int64, chunk []Value) []byte {
	meta := awsMetadata{Timestamp: ts, CloudWatchMetrics: []metricDirectives{{
		Namespace: Namespace, Dimensions: [][]string{{StageDimension}}, Metrics: make([]metricDefinition, 0, len(chunk)),
	}}}
	taken := map[string]bool{"_aws": true, StageDimension: true}
	for _, v := range chunk {
		meta.CloudWatchMetrics[0].Metrics = append(meta.CloudWatchMetrics[0].Metrics, metricDefinition{Name: v.Name, Unit: v.Unit})
		taken[v.Name] = true
	}
	buf := []byte(`{"_aws":`)
	buf = appendJSON(buf, meta)
	keys := make([]string, 0, len(e.props))
	for k := range e.props {
		if !taken[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		buf = appendField(buf, k, e.props[k])
	}
	buf = appendField(buf, StageDimension, e.stage)
	for _, v := range chunk {
		if len(v.Values) == 1 {
			buf = appendField(buf, v.Name, v.Values[0])
		} else {
			buf = appendField(buf, v.Name, v.Values)
		}
	}
	return append(buf, '}', '\n')
}

func appendField(buf []byte, key string, value any) []byte {
	buf = append(buf, ',')
	buf = appendJSON(buf, key)
	buf = append(buf, ':')
	return appendJSON(buf, value)
}

// appendJSON appends the encoding of v, which is always one of the strings,
// finite numbers and plain structs above: json.Marshal cannot fail on them.
func appendJSON(buf []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("metrics: " + err.Error())
	}
	return append(buf, b...)
}
