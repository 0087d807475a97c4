package localserver

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestDevOpenAPIForLocalStackMode: a server without the local KMS or the
// cloud stand-ins (LocalStack mode) serves a dev document without the
// /dev/kms routes it lacks.
func TestDevOpenAPIForLocalStackMode(t *testing.T) {
	s := &Server{Local: &Local{}}
	b, err := devOpenAPIFor(s.devRoutes())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for path, item := range doc.Paths {
		for method := range item {
			got = append(got, method+" "+path)
		}
	}
	slices.Sort(got)
	want := []string{"get /dev/openapi.json", "post /dev/admin-token", "post /dev/legal-waiver"}
	if !slices.Equal(got, want) {
		t.Fatalf("LocalStack mode's dev document has %v, want %v", got, want)
	}
}
