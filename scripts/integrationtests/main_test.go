package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module writes a Go module of files (path -> content) to a new directory.
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.22\n"
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const tagged = "//go:build integration\n\n"

// fixture has the cases the tier meets: a package with unit and
// integration tests, one whose files are all tagged (an external test
// package), one whose unit test shares a name with another package's
// integration test, one with a file only the untagged build has, and one
// whose tagged file defines no test.
var fixture = map[string]string{
	"a/a.go":      "package a\n",
	"a/a_test.go": "package a\n\nimport \"testing\"\n\nfunc TestUnit(t *testing.T) {}\n\nfunc BenchmarkUnit(b *testing.B) {}\n",
	"a/a_integration_test.go": tagged + `package a

import (
	"fmt"
	"testing"
)

func TestMain(m *testing.M) { m.Run() }

func TestIntA(t *testing.T) {}

func TestIntB(t *testing.T) { t.Run("sub", func(t *testing.T) {}) }

func Test(t *testing.T) {}

func Testify() {} // not a test: a lower-case letter follows the prefix

func FuzzParse(f *testing.F) { f.Add(1); f.Fuzz(func(t *testing.T, n int) {}) }

func BenchmarkDrill(b *testing.B) { panic("benchmarks must not run") }

func Example() {
	fmt.Println("examples are not run")
	// Output: examples are not run
}

type suite struct{}

func (suite) TestMethod(t *testing.T) {}
`,
	"b/b_integration_test.go": tagged + "package b_test\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n",
	"c/c_test.go":             "package c\n\nimport \"testing\"\n\nfunc TestIntA(t *testing.T) { panic(\"the unit test ran in the integration tier\") }\n",
	"c/c_integration_test.go": tagged + "package c\n\nimport \"testing\"\n\nfunc TestC(t *testing.T) {}\n",
	"d/d.go":                  "package d\n",
	"d/d_integration_test.go": tagged + "package d\n\nimport \"testing\"\n\nfunc BenchmarkD(b *testing.B) {}\n\nfunc helper(t *testing.T) {}\n",
	"e/e_plain_test.go":       "//go:build !integration\n\npackage e\n\nimport \"testing\"\n\nfunc TestE(t *testing.T) { panic(\"the untagged file ran\") }\n",
	"e/e_integration_test.go": tagged + "package e\n\nimport \"testing\"\n\nfunc TestE(t *testing.T) {}\n",
}

func TestFind(t *testing.T) {
	dir := module(t, fixture)
	runs, err := find(dir, "integration", []string{"./..."})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"^(FuzzParse|Test|TestB|TestE|TestIntA|TestIntB)$ example.com/m/a example.com/m/b example.com/m/e",
		"^(TestC)$ example.com/m/c",
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// What go test then runs is exactly the tagged tests: no unit test, no
	// benchmark, no example.
	ran := map[string][]string{}
	for _, r := range runs {
		args := slices.Concat([]string{"test", "-count=1", "-json", "-tags", "integration", "-run", r.Pattern()}, r.Packages)
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var ev struct{ Action, Package, Test string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Action == "run" && !strings.Contains(ev.Test, "/") {
				ran[ev.Package] = append(ran[ev.Package], ev.Test)
			}
		}
	}
	wantRan := map[string][]string{
		"example.com/m/a": {"FuzzParse", "Test", "TestIntA", "TestIntB"},
		"example.com/m/b": {"TestB"},
		"example.com/m/c": {"TestC"},
		"example.com/m/e": {"TestE"},
	}
	for p, names := range wantRan {
		slices.Sort(ran[p])
		if !slices.Equal(ran[p], names) {
			t.Errorf("go test ran %v in %s, want %v", ran[p], p, names)
		}
	}
	if len(ran) != len(wantRan) {
		t.Errorf("go test ran tests in %d packages, want %d: %v", len(ran), len(wantRan), ran)
	}
}

func TestFindFailsOnNothingToRun(t *testing.T) {
	dir := module(t, map[string]string{
		"a/a_test.go":             "package a\n\nimport \"testing\"\n\nfunc TestUnit(t *testing.T) {}\n",
		"d/d_integration_test.go": tagged + "package d\n\nimport \"testing\"\n\nfunc BenchmarkD(b *testing.B) {}\n",
	})
	if _, err := find(dir, "integration", []string{"./..."}); err == nil || !strings.Contains(err.Error(), "would run nothing") {
		t.Fatalf("find: %v, want an error saying the tier would run nothing", err)
	}
}

func TestFindFailsOnBrokenFile(t *testing.T) {
	dir := module(t, map[string]string{
		"a/a_integration_test.go": tagged + "package a\n\nfunc TestBroken(t *testing.T) {\n",
	})
	if _, err := find(dir, "integration", []string{"./..."}); err == nil {
		t.Fatal("find succeeded on a tagged file that does not parse; want an error, not a package silently left out")
	}
}
