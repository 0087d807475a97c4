package openapigen

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type inner struct {
	N int `json:"n"`
}

type body struct {
	Name   string     `json:"name"`
	Note   string     `json:"note,omitempty"`
	At     *time.Time `json:"at"`
	Maybe  *string    `json:"maybe,omitempty"`
	Inner  inner      `json:"inner"`
	Hidden string     `json:"-"`
	embedded
}

type embedded struct {
	Ptr *int `json:"ptr"`
}

type custom struct{}

func (custom) MarshalJSON() ([]byte, error) { return []byte(`"x"`), nil }

type withCustom struct {
	C custom `json:"c"`
}

func doc(ops ...Op) Doc {
	return Doc{Title: "t", Version: "1", StepUpHeader: "X-Step", ErrorStatus: map[string]int{"bad": 400, "oops": 500}, Ops: ops}
}

func schemaOf(t *testing.T, b []byte, name string) map[string]any {
	t.Helper()
	var d struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d.Components.Schemas[name]
}

// TestReflectAsEncodingJSON: required members are those without
// omitempty, a nil pointer without omitempty may be null (an embedded
// struct's too), json:"-" is absent, unknown members are refused.
func TestReflectAsEncodingJSON(t *testing.T) {
	b, err := Generate(doc(Op{Method: "GET", Path: "/x", ID: "x", Auth: AuthNone,
		Responses: []Response{{Status: 200, Description: "ok", Body: body{}}}, Errors: []int{400}}))
	if err != nil {
		t.Fatal(err)
	}
	s := schemaOf(t, b, "body")
	req, _ := json.Marshal(s["required"])
	if string(req) != `["name","at","inner","ptr"]` {
		t.Errorf("required %s", req)
	}
	p := s["properties"].(map[string]any)
	for _, name := range []string{"at", "ptr"} {
		if _, ok := p[name].(map[string]any)["anyOf"]; !ok {
			t.Errorf("%s is not nullable: %v", name, p[name])
		}
	}
	if _, ok := p["maybe"].(map[string]any)["anyOf"]; ok {
		t.Error("an omitempty pointer is documented nullable")
	}
	if _, ok := p["Hidden"]; ok {
		t.Error(`a json:"-" member is documented`)
	}
	if s["additionalProperties"] != false {
		t.Error("unknown members are allowed")
	}
}

// TestRefusesCustomMarshaler: a type with its own MarshalJSON needs its
// schema given; with it, generation works.
func TestRefusesCustomMarshaler(t *testing.T) {
	op := Op{Method: "GET", Path: "/x", ID: "x", Auth: AuthNone, Responses: []Response{{Status: 200, Description: "ok", Body: withCustom{}}}}
	if _, err := Generate(doc(op)); err == nil || !strings.Contains(err.Error(), "MarshalJSON") {
		t.Fatalf("custom MarshalJSON without a schema: %v", err)
	}
}

// TestRefusesUndescribedPathParam and an error status no code has.
func TestRefusesGaps(t *testing.T) {
	if _, err := Generate(doc(Op{Method: "GET", Path: "/x/{id}", ID: "x", Auth: AuthNone})); err == nil {
		t.Error("an undescribed path parameter was accepted")
	}
	if _, err := Generate(doc(Op{Method: "GET", Path: "/x", ID: "x", Auth: AuthNone, Errors: []int{418}})); err == nil {
		t.Error("an error status without a code was accepted")
	}
}
