package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// requireEqual fails the test when got and want differ in any field. It
// walks the values by reflection, so a field added to a domain type later
// is compared without touching the suite. Times compare with Equal and must
// come back in UTC; a nil and an empty slice or map are the same value,
// because stores cannot always tell them apart (JSON omitempty, DynamoDB
// attributes that are absent).
func requireEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	var diffs []string
	diffValue(what, reflect.ValueOf(got), reflect.ValueOf(want), &diffs)
	for _, d := range diffs {
		t.Error(d)
	}
	if len(diffs) > 0 {
		t.FailNow()
	}
}

func diffValue(path string, got, want reflect.Value, diffs *[]string) {
	if !got.IsValid() || !want.IsValid() {
		if got.IsValid() != want.IsValid() {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, got, want))
		}
		return
	}
	if got.Type() != want.Type() {
		*diffs = append(*diffs, fmt.Sprintf("%s: got type %s, want %s", path, got.Type(), want.Type()))
		return
	}
	if got.Type() == timeType {
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		switch {
		case !g.Equal(w):
			*diffs = append(*diffs, fmt.Sprintf("%s: got %s, want %s", path, g.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano)))
		case !g.IsZero() && g.Location() != time.UTC:
			*diffs = append(*diffs, fmt.Sprintf("%s: got location %s, want UTC", path, g.Location()))
		}
		return
	}
	switch got.Kind() {
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				*diffs = append(*diffs, fmt.Sprintf("%s: got %s, want %s", path, show(got), show(want)))
			}
			return
		}
		diffValue(path, got.Elem(), want.Elem(), diffs)
	case reflect.Struct:
		for i := range got.NumField() {
			f := got.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			diffValue(path+"."+f.Name, got.Field(i), want.Field(i), diffs)
		}
	case reflect.Slice:
		if got.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				*diffs = append(*diffs, fmt.Sprintf("%s: got %x, want %x", path, got.Bytes(), want.Bytes()))
			}
			return
		}
		if got.Len() != want.Len() {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %d elements, want %d", path, got.Len(), want.Len()))
			return
		}
		for i := range got.Len() {
			diffValue(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i), diffs)
		}
	case reflect.Map:
		if got.Len() != want.Len() {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, got, want))
			return
		}
		for _, k := range want.MapKeys() {
			g := got.MapIndex(k)
			if !g.IsValid() {
				*diffs = append(*diffs, fmt.Sprintf("%s: key %v missing", path, k))
				continue
			}
			diffValue(fmt.Sprintf("%s[%v]", path, k), g, want.MapIndex(k), diffs)
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface()))
		}
	}
}

// show renders a possibly nil pointer for a failure message.
func show(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	return fmt.Sprintf("%v", v.Elem())
}
