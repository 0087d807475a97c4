package metrics_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/metrics"
)

// document is an EMF document as CloudWatch reads it.
type document struct {
	AWS struct {
		Timestamp         int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
	Root map[string]any `json:"-"`
}

// parse decodes every line of out, failing the test on anything that is
// not one JSON object per line.
func parse(t *testing.T, out string) []document {
	t.Helper()
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	var docs []document
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var d document
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("line is not an EMF document: %v: %s", err, line)
		}
		if err := json.Unmarshal([]byte(line), &d.Root); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	return docs
}

// checkEnvelope asserts what every keyseal document must carry: one
// directive in the keyseal namespace, dimension set [["Stage"]], the Stage
// value, and a root value for every declared metric.
func checkEnvelope(t *testing.T, d document, stage string) {
	t.Helper()
	if len(d.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("%d metric directives, want 1", len(d.AWS.CloudWatchMetrics))
	}
	cw := d.AWS.CloudWatchMetrics[0]
	if cw.Namespace != "keyseal" {
		t.Errorf("namespace %q, want keyseal", cw.Namespace)
	}
	if len(cw.Dimensions) != 1 || len(cw.Dimensions[0]) != 1 || cw.Dimensions[0][0] != "Stage" {
		t.Errorf("dimensions %v, want [[Stage]]", cw.Dimensions)
	}
	if d.Root["Stage"] != stage {
		t.Errorf("Stage = %v, want %q", d.Root["Stage"], stage)
	}
	if d.AWS.Timestamp <= 0 {
		t.Errorf("Timestamp = %d", d.AWS.Timestamp)
	}
	for _, m := range cw.Metrics {
		if _, ok := d.Root[m.Name]; !ok {
			t.Errorf("metric %s declared without a value", m.Name)
		}
	}
}

// units maps each declared metric to its unit.
func units(d document) map[string]string {
	out := map[string]string{}
	for _, m := range d.AWS.CloudWatchMetrics[0].Metrics {
		out[m.Name] = m.Unit
	}
	return out
}

// floats reads a metric's value: a number or an array of numbers.
func floats(t *testing.T, v any) []float64 {
	t.Helper()
	switch v := v.(type) {
	case float64:
		return []float64{v}
	case []any:
		out := make([]float64, len(v))
		for i, x := range v {
			f, ok := x.(float64)
			if !ok {
				t.Fatalf("array holds %T, want numbers", x)
			}
			out[i] = f
		}
		return out
	}
	t.Fatalf("metric value is %T, want a number or an array", v)
	return nil
}

func newEmitter(buf *bytes.Buffer, stage string) *metrics.Emitter {
	e := metrics.New(buf, stage)
	metrics.SetNow(e, func() time.Time { return time.UnixMilli(1_764_000_000_123) })
	return e
}

func TestEmitWritesOneDocument(t *testing.T) {
	var buf bytes.Buffer
	e := newEmitter(&buf, "prod").With("function", "verify-poller")
	e.Emit(
		metrics.Value{Name: metrics.SealedTenants, Unit: metrics.Count, Values: []float64{2}},
		metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{0}},
		metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: []float64{12.5, 30}},
		metrics.Value{Name: metrics.KeyRotationAgeDays, Unit: metrics.None, Values: []float64{91.25}},
	)
	docs := parse(t, buf.String())
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	d := docs[0]
	checkEnvelope(t, d, "prod")
	if d.AWS.Timestamp != 1_764_000_000_123 {
		t.Errorf("Timestamp = %d, want the clock's milliseconds", d.AWS.Timestamp)
	}
	want := map[string]string{"SealedTenants": "Count", "KMSFailures": "Count", "KMSLatency": "Milliseconds", "KeyRotationAgeDays": "None"}
	got := units(d)
	if len(got) != len(want) {
		t.Fatalf("declared metrics %v, want %v", got, want)
	}
	for name, unit := range want {
		if got[name] != unit {
			t.Errorf("%s unit = %q, want %q", name, got[name], unit)
		}
	}
	// One value is a plain number, several an array.
	if v, ok := d.Root["SealedTenants"].(float64); !ok || v != 2 {
		t.Errorf("SealedTenants = %#v, want the number 2", d.Root["SealedTenants"])
	}
	if v, ok := d.Root["KMSFailures"].(float64); !ok || v != 0 {
		t.Errorf("KMSFailures = %#v, want the number 0", d.Root["KMSFailures"])
	}
	if _, ok := d.Root["KMSLatency"].([]any); !ok {
		t.Errorf("KMSLatency = %#v, want an array", d.Root["KMSLatency"])
	}
	if got := floats(t, d.Root["KMSLatency"]); len(got) != 2 || got[0] != 12.5 || got[1] != 30 {
		t.Errorf("KMSLatency = %v, want [12.5 30]", got)
	}
	if got := floats(t, d.Root["KeyRotationAgeDays"]); got[0] != 91.25 {
		t.Errorf("KeyRotationAgeDays = %v, want 91.25", got)
	}
	if d.Root["function"] != "verify-poller" {
		t.Errorf("function = %v, want verify-poller", d.Root["function"])
	}
}

func TestEmitSplitsSeriesAtMaxValues(t *testing.T) {
	var buf bytes.Buffer
	e := newEmitter(&buf, "staging")
	latencies := make([]float64, 250)
	for i := range latencies {
		latencies[i] = float64(i)
	}
	e.Emit(metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: latencies},
		metrics.Value{Name: metrics.SealedTenants, Unit: metrics.Count, Values: []float64{1}})
	docs := parse(t, buf.String())
	if len(docs) != 3 {
		t.Fatalf("%d documents for 250 values, want 3", len(docs))
	}
	var all []float64
	for i, d := range docs {
		checkEnvelope(t, d, "staging")
		got := floats(t, d.Root["KMSLatency"])
		if wantLen := []int{100, 100, 50}[i]; len(got) != wantLen {
			t.Errorf("document %d carries %d latencies, want %d", i, len(got), wantLen)
		}
		all = append(all, got...)
		// The count rides in the first document only, and a document
		// declares exactly the metrics it carries.
		_, hasSealed := d.Root["SealedTenants"]
		if hasSealed != (i == 0) {
			t.Errorf("document %d: SealedTenants present = %v", i, hasSealed)
		}
		if u := units(d); len(u) != map[bool]int{true: 2, false: 1}[i == 0] || u["KMSLatency"] != "Milliseconds" {
			t.Errorf("document %d declares %v", i, u)
		}
	}
	for i, v := range all {
		if v != float64(i) {
			t.Fatalf("latencies out of order or lost at %d: %v", i, v)
		}
	}
}

func TestEmitDropsWhatJSONCannotCarry(t *testing.T) {
	var buf bytes.Buffer
	e := newEmitter(&buf, "dev")
	e.Emit(metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: []float64{math.NaN(), math.Inf(1)}},
		metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count})
	if buf.Len() != 0 {
		t.Fatalf("documents without a finite value written: %s", buf.String())
	}
	e.Emit(metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: []float64{math.NaN(), 7}},
		metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{1}},
		metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{2}})
	docs := parse(t, buf.String())
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	checkEnvelope(t, docs[0], "dev")
	if got := floats(t, docs[0].Root["KMSLatency"]); len(got) != 1 || got[0] != 7 {
		t.Errorf("KMSLatency = %v, want [7]", got)
	}
	if got := floats(t, docs[0].Root["KMSFailures"]); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("repeated KMSFailures = %v, want them merged to [1 2]", got)
	}
	if n := len(docs[0].AWS.CloudWatchMetrics[0].Metrics); n != 2 {
		t.Errorf("%d metrics declared, want 2", n)
	}
}

// TestPropertiesNeverShadowTheContract: a property named like the dimension
// or a metric is left out, so each key appears once and keeps its meaning.
func TestPropertiesNeverShadowTheContract(t *testing.T) {
	var buf bytes.Buffer
	e := newEmitter(&buf, "prod").With("Stage", "other").With("KMSFailures", "text").With("_aws", "x").With("function", "session-issue")
	e.Emit(metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{1}})
	line := buf.String()
	for _, key := range []string{`"Stage":`, `"KMSFailures":`, `"_aws":`, `"function":`} {
		if n := strings.Count(line, key); n != 1 {
			t.Errorf("%s appears %d times in %s", key, n, line)
		}
	}
	d := parse(t, line)[0]
	checkEnvelope(t, d, "prod")
	if v, ok := d.Root["KMSFailures"].(float64); !ok || v != 1 {
		t.Errorf("KMSFailures = %#v, want 1", d.Root["KMSFailures"])
	}
}

func TestWithDoesNotChangeTheParent(t *testing.T) {
	var buf bytes.Buffer
	parent := newEmitter(&buf, "prod")
	_ = parent.With("function", "health")
	parent.Emit(metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{1}})
	if d := parse(t, buf.String())[0]; d.Root["function"] != nil {
		t.Fatalf("With leaked into its parent: %v", d.Root)
	}
}

func TestNilEmitterEmitsNothing(t *testing.T) {
	var e *metrics.Emitter
	e.Emit(metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{1}})
	if e.With("function", "x") != nil {
		t.Fatal("With on a nil Emitter returned an Emitter")
	}
}

// TestConcurrentEmitKeepsLinesWhole: documents from many goroutines (and
// from copies made by With) land as whole lines on the shared writer.
func TestConcurrentEmitKeepsLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	base := newEmitter(&buf, "prod")
	var wg sync.WaitGroup
	for g := range 8 {
		e := base
		if g%2 == 1 {
			e = base.With("function", "verify-poller")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				e.Emit(metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: make([]float64, 150)})
			}
		}()
	}
	wg.Wait()
	docs := parse(t, buf.String())
	if len(docs) != 8*50*2 {
		t.Fatalf("%d documents, want %d", len(docs), 8*50*2)
	}
	for _, d := range docs {
		checkEnvelope(t, d, "prod")
	}
}
