package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// decodeOptions make request bodies mean one thing to every reader: a proxy
// that validates a body in front of keyseal must see what keyseal stores.
// encoding/json (v1) matches member names case-insensitively and by Unicode
// folding ("NAME", "ſtate" with U+017F, "\u212Aey_id" with the Kelvin sign
// all land in lower-case fields), lets a later duplicate win and replaces
// invalid UTF-8 with U+FFFD. The v2 decoder with these options matches names
// exactly, refuses duplicates, unknown members and invalid UTF-8 (all of
// which are its defaults but one; they are spelled out so that no default
// can change them).
var decodeOptions = json.JoinOptions(
	json.MatchCaseInsensitiveNames(false),
	json.RejectUnknownMembers(true),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// Decode reads a JSON body into v: at most MaxBody bytes of valid UTF-8, one
// JSON value whose member names are exactly those of v's fields (or, for a
// map, any names, each once). An empty body (only JSON whitespace) decodes
// as nothing when allowEmpty. Every refusal is EINVALID with a message that
// names the member at fault but never repeats a value of the body.
func Decode(r *Request, v any, allowEmpty bool) error {
	body := []byte(r.Body)
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return keyseal.Errorf(keyseal.EINVALID, "body is not valid base64")
		}
		body = b
	}
	if len(body) > MaxBody {
		return keyseal.Errorf(keyseal.EINVALID, "request body is larger than %d bytes", MaxBody)
	}
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		if allowEmpty {
			return nil
		}
		return keyseal.Errorf(keyseal.EINVALID, "request body is required (JSON)")
	}
	if !utf8.Valid(body) {
		return keyseal.Errorf(keyseal.EINVALID, "request body is not valid UTF-8")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body), decodeOptions)
	if err := json.UnmarshalDecode(dec, v, decodeOptions); err != nil {
		return keyseal.Errorf(keyseal.EINVALID, "malformed JSON body: %s", jsonProblem(err))
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return keyseal.Errorf(keyseal.EINVALID, "malformed JSON body: unexpected data after the JSON value")
	}
	return nil
}

// jsonProblem describes a decode error without echoing the body: it names
// the member at fault (a name, never a value) and the byte offset.
func jsonProblem(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		if errors.Is(se.Err, jsontext.ErrDuplicateName) {
			return fmt.Sprintf("duplicate member %s", memberName(se.JSONPointer))
		}
		if se.JSONPointer != "" {
			return fmt.Sprintf("syntax error at byte %d, in member %s (invalid characters, escapes or UTF-8)", se.ByteOffset, memberName(se.JSONPointer))
		}
		return fmt.Sprintf("syntax error at byte %d", se.ByteOffset)
	}
	if se, ok := errors.AsType[*json.SemanticError](err); ok {
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			return fmt.Sprintf("unknown member %s", memberName(se.JSONPointer))
		case se.JSONPointer == "":
			return "the body must be a JSON object"
		case se.GoType != nil:
			return fmt.Sprintf("member %s must be %s", memberName(se.JSONPointer), jsonKindOf(se.GoType))
		}
		return fmt.Sprintf("member %s has a value keyseal cannot read", memberName(se.JSONPointer))
	}
	return "not a JSON object"
}

// maxNameInError bounds how much of a member name an error repeats.
const maxNameInError = 64

// memberName renders the member a JSON pointer points at, quoted (control
// characters escaped) and cut to maxNameInError bytes; a nested member is
// named by its whole pointer.
func memberName(p jsontext.Pointer) string {
	name := p.LastToken()
	if parent := p.Parent(); parent != "" {
		name = string(p)
	}
	if len(name) > maxNameInError {
		cut := maxNameInError
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "..."
	}
	return fmt.Sprintf("%q", name)
}

// jsonKindOf says which JSON value a Go type takes.
func jsonKindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another kind of value"
}
