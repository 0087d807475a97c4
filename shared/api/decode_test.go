package api_test

import (
	stdjson "encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// schema is a body with the member names the attacks aimed at:
// "name" (upper-case variants), "state" (U+017F, the long s, folds to s)
// and "key_id" (U+212A, the Kelvin sign, folds to k).
type schema struct {
	Name  string `json:"name"`
	State string `json:"state"`
	KeyID string `json:"key_id"`
}

var schemaNames = map[string]bool{"name": true, "state": true, "key_id": true}

func decode(body string, v any) error {
	return api.Decode(&api.Request{APIGatewayProxyRequest: events.APIGatewayProxyRequest{Body: body}}, v, true)
}

// TestDecodeStrict: member names match exactly, once; unknown members and
// invalid UTF-8 are refused with a 400 naming the member, and the message
// never repeats a value of the body.
func TestDecodeStrict(t *testing.T) {
	const secret = "s3cr3t-value"
	for _, tc := range []struct {
		name, body, says string
	}{
		{"upper-case duplicate", `{"name":"a","NAME":"` + secret + `"}`, `unknown member "NAME"`},
		{"capitalized", `{"Name":"` + secret + `"}`, `unknown member "Name"`},
		{"long s (U+017F)", `{"ſtate":"` + secret + `"}`, `unknown member "ſtate"`},
		{"Kelvin sign (U+212A)", "{\"\u212Aey_id\":\"" + secret + "\"}", "unknown member \"\u212Aey_id\""},
		{"Kelvin sign, escaped", `{"\u212Aey_id":"` + secret + `"}`, "unknown member \"\u212Aey_id\""},
		{"exact duplicate", `{"name":"a","name":"` + secret + `"}`, `duplicate member "name"`},
		{"duplicate by escape", `{"name":"a","n\u0061me":"` + secret + `"}`, `duplicate member "name"`},
		{"unknown member", `{"name":"a","admin":true}`, `unknown member "admin"`},
		{"invalid UTF-8 in a value", "{\"name\":\"" + secret + "\xff\"}", "not valid UTF-8"},
		{"invalid UTF-8 in a name", "{\"na\xc0me\":\"" + secret + "\"}", "not valid UTF-8"},
		{"lone surrogate escape", `{"name":"` + secret + `\ud800"}`, `in member "name"`},
		{"wrong type", `{"name":["` + secret + `"]}`, `member "name" must be a string`},
		{"not an object", `["` + secret + `"]`, "must be a JSON object"},
		{"trailing data", `{"name":"a"}{"name":"` + secret + `"}`, "unexpected data after the JSON value"},
		{"truncated", `{"name":"` + secret, "unexpected end of input"},
		{"only a non-JSON space (U+00A0)", "\u00a0", "syntax error"},
		{"long unknown name is cut", `{"` + strings.Repeat("x", 500) + `":1}`, `unknown member "` + strings.Repeat("x", 64) + `..."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v schema
			err := decode(tc.body, &v)
			if keyseal.ErrorCode(err) != keyseal.EINVALID || !strings.Contains(keyseal.ErrorMessage(err), tc.says) {
				t.Fatalf("Decode(%q) = %v (decoded %+v); want EINVALID saying %q", tc.body, err, v, tc.says)
			}
			if msg := keyseal.ErrorMessage(err); strings.Contains(msg, secret) {
				t.Fatalf("the message repeats a value of the body: %q", msg)
			}
		})
	}

	var v schema
	if err := decode(`{"name":"a","state":"s","key_id":"k"}`, &v); err != nil || v != (schema{"a", "s", "k"}) {
		t.Fatalf("exact names: %+v, %v", v, err)
	}
	if err := decode(" \t\r\n", &v); err != nil {
		t.Fatalf("JSON whitespace is an empty body: %v", err)
	}
}

// TestDecodeMap: PUT /admin/tenant-kms decodes into a map (each provider
// then refuses the fields it does not take); duplicates and invalid UTF-8
// are refused there too, and values must be strings.
func TestDecodeMap(t *testing.T) {
	for _, body := range []string{
		`{"provider":"local","provider":"aws-kms"}`,
		"{\"provider\":\"loc\xe9l\"}",
		"{\"pr\xffvider\":\"local\"}",
		`{"provider":7}`,
		`{"provider":{"a":"b"}}`,
	} {
		var m map[string]string
		if err := decode(body, &m); keyseal.ErrorCode(err) != keyseal.EINVALID {
			t.Errorf("Decode(%q) = %v, %v; want EINVALID", body, m, err)
		}
	}
	var m map[string]string
	if err := decode(`{"provider":"local","PROVIDER":"aws-kms"}`, &m); err != nil || len(m) != 2 || m["provider"] != "local" {
		t.Fatalf("names differing in case are two members: %v, %v", m, err)
	}
}

// FuzzDecode: for any body Decode accepts, the decoded members are exactly
// the body's members, each named by one of the schema's names exactly (no
// case folding, no Unicode folding), none twice, and the body is valid
// UTF-8. The oracle is encoding/json's tokenizer, which folds nothing and
// keeps duplicates, so it sees what a proxy in front of keyseal would.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","NAME":"b"}`,
		`{"name":"a","name":"b"}`,
		`{"ſtate":"x"}`,
		"{\"\u212Aey_id\":\"x\"}",
		`{"\u212Aey_id":"x"}`,
		`{"key_id":"k","state":"s","name":"n"}`,
		`{"n\u0061me":"escaped but exact"}`,
		"{\"name\":\"\xff\"}",
		"{\"na\xc0me\":\"a\"}",
		`{"name":"\ud800"}`,
		`{"name":null}`,
		`null`,
		` `,
		`{"name":"a"} {}`,
		`{"provider":"local","key_id":"k"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v schema
		if err := decode(string(body), &v); err == nil {
			got := map[string]string{}
			for name, value := range map[string]string{"name": v.Name, "state": v.State, "key_id": v.KeyID} {
				if value != "" {
					got[name] = value
				}
			}
			checkAccepted(t, body, got, true)
		}
		var m map[string]string
		if err := decode(string(body), &m); err == nil {
			got := map[string]string{}
			for k, v := range m {
				if v != "" {
					got[k] = v
				}
			}
			checkAccepted(t, body, got, false)
		}
	})
}

// checkAccepted compares what Decode produced (non-empty strings by
// member name) with the body's own top-level members.
func checkAccepted(t *testing.T, body []byte, got map[string]string, inSchema bool) {
	t.Helper()
	if !utf8.Valid(body) {
		t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
	}
	members, err := topLevelMembers(body)
	if err != nil {
		t.Fatalf("accepted %q, which the reference tokenizer refuses: %v", body, err)
	}
	want := map[string]string{}
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.name] {
			t.Fatalf("accepted a duplicate member %q in %q", m.name, body)
		}
		seen[m.name] = true
		if inSchema && !schemaNames[m.name] {
			t.Fatalf("accepted member %q, which is not in the schema, in %q", m.name, body)
		}
		if m.value != "" {
			want[m.name] = m.value
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("decoded %q as %v; its members are %v", body, got, want)
	}
}

type member struct{ name, value string }

// topLevelMembers lists the members of the body's top-level object, in
// order, duplicates included; a value that is not a string counts as "".
// A body of only whitespace or null has none.
func topLevelMembers(body []byte) ([]member, error) {
	dec := stdjson.NewDecoder(strings.NewReader(string(body)))
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != stdjson.Delim('{') {
		return nil, errors.New("not an object")
	}
	var out []member
	for dec.More() {
		name, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var value stdjson.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		var s string
		_ = stdjson.Unmarshal(value, &s)
		out = append(out, member{name: name.(string), value: s})
	}
	return out, nil
}
