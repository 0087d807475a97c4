// Command integrationtests prints the go test runs that execute exactly the
// tests the integration build tag adds: the Test and Fuzz functions of the
// test files `go list -tags integration` includes and a plain `go list`
// leaves out. scripts/test.sh runs its output as the integration tier, so
// the unit tests are not run a second time, benchmarks are not run at all,
// and a test added to an integration file (or a new one) is found without
// any list to maintain.
//
// Each output line is one go test run: a -run pattern, then the packages it
// applies to, separated by spaces:
//
//	^(TestA|TestB)$ example.com/m/a example.com/m/b
//
// Packages share a run, so go test runs them in parallel, unless a name in
// the shared pattern is also a unit test of another of them; such a package
// gets a run of its own. The command fails when it finds no test, so the
// tier cannot pass by running nothing.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

func main() {
	fs := flag.NewFlagSet("integrationtests", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: go run ./scripts/integrationtests [-tag integration] [packages]

Prints one line per go test run, "<-run pattern> <package>...", that runs
only the tests defined in files the build tag adds. Packages default to ./...

`)
		fs.PrintDefaults()
	}
	tag := fs.String("tag", "integration", "the build tag that marks the tier's files")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	runs, err := find(".", *tag, patterns)
	if err != nil {
		fmt.Fprintf(os.Stderr, "integrationtests: %v\n", err)
		os.Exit(1)
	}
	for _, r := range runs {
		fmt.Println(r)
	}
}

// A run is one go test invocation of the tier.
type run struct {
	Tests    []string // the top-level tests it runs, sorted
	Packages []string // import paths, sorted
}

// Pattern is the -run pattern matching exactly r's tests.
func (r run) Pattern() string { return "^(" + strings.Join(r.Tests, "|") + ")$" }

func (r run) String() string { return r.Pattern() + " " + strings.Join(r.Packages, " ") }

// pkg is the part of `go list -json` this command reads.
type pkg struct {
	ImportPath   string
	Dir          string
	TestGoFiles  []string
	XTestGoFiles []string
	Error        *struct{ Err string }
}

// tests is one package's test names, split by whether the tag adds the file
// that defines them.
type tests struct {
	importPath string
	tagged     []string // in files only the tagged build has
	unit       []string // in files both builds have
}

// find lists the packages matching patterns in dir with and without tag
// and returns the runs of the tagged files' tests.
func find(dir, tag string, patterns []string) ([]run, error) {
	withTag, err := list(dir, []string{"-tags", tag}, patterns)
	if err != nil {
		return nil, err
	}
	plain, err := list(dir, nil, patterns)
	if err != nil {
		return nil, err
	}
	var found []tests
	for _, p := range withTag {
		if p.Error != nil {
			return nil, fmt.Errorf("package %s: %s", p.ImportPath, p.Error.Err)
		}
		inPlain := map[string]bool{}
		if q, ok := plain[p.ImportPath]; ok {
			for _, f := range slices.Concat(q.TestGoFiles, q.XTestGoFiles) {
				inPlain[f] = true
			}
		}
		var ts tests
		ts.importPath = p.ImportPath
		for _, f := range slices.Concat(p.TestGoFiles, p.XTestGoFiles) {
			names, err := testNames(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			if inPlain[f] {
				ts.unit = append(ts.unit, names...)
			} else {
				ts.tagged = append(ts.tagged, names...)
			}
		}
		if len(ts.tagged) > 0 {
			found = append(found, ts)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no Test or Fuzz function in a file that the %q build tag adds (patterns %s): the tier would run nothing",
			tag, strings.Join(patterns, " "))
	}
	return group(found), nil
}

// group puts the packages into as few runs as it can, first fit in import
// path order, keeping out of each run any package with a unit test that the
// run's pattern would match.
func group(found []tests) []run {
	slices.SortFunc(found, func(a, b tests) int { return strings.Compare(a.importPath, b.importPath) })
	type building struct {
		tagged, unit map[string]bool
		packages     []string
	}
	var runs []*building
	clashes := func(b *building, ts tests) bool {
		for _, n := range ts.tagged {
			if b.unit[n] {
				return true
			}
		}
		for _, n := range ts.unit {
			if b.tagged[n] {
				return true
			}
		}
		return false
	}
	for _, ts := range found {
		var into *building
		for _, b := range runs {
			if !clashes(b, ts) {
				into = b
				break
			}
		}
		if into == nil {
			into = &building{tagged: map[string]bool{}, unit: map[string]bool{}}
			runs = append(runs, into)
		}
		into.packages = append(into.packages, ts.importPath)
		for _, n := range ts.tagged {
			into.tagged[n] = true
		}
		for _, n := range ts.unit {
			into.unit[n] = true
		}
	}
	out := make([]run, len(runs))
	for i, b := range runs {
		for n := range b.tagged {
			out[i].Tests = append(out[i].Tests, n)
		}
		slices.Sort(out[i].Tests)
		out[i].Packages = b.packages
	}
	return out
}

// list runs go list in dir and returns its packages by import path, in the
// order go list gives them.
func list(dir string, flags, patterns []string) (map[string]pkg, error) {
	args := slices.Concat([]string{"list", "-e", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles,Error"}, flags, patterns)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("go %s: decode its output: %v", strings.Join(args, " "), err)
		}
		pkgs[p.ImportPath] = p
	}
}

// testNames returns the top-level functions of a test file that go test
// runs as tests: Test and Fuzz functions, by go test's naming rule (the
// prefix alone, or followed by a character that is not a lower-case
// letter). TestMain is not a test. Benchmarks and examples are left out:
// the tier runs neither.
func testNames(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name == "TestMain" {
			continue
		}
		if isTest(fn.Name.Name, "Test") || isTest(fn.Name.Name, "Fuzz") {
			names = append(names, fn.Name.Name)
		}
	}
	return names, nil
}

func isTest(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	if len(name) == len(prefix) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(name[len(prefix):])
	return !unicode.IsLower(r)
}
