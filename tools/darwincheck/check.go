package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Finding is one problem in a checked package: a type error or a call that
// panics at run time.
type Finding struct {
	Pos  token.Position
	Kind string // "type" or "panic"
	Msg  string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s", f.Pos, f.Kind, f.Msg)
}

// listedPackage is the subset of `go list -json` output that the checker uses.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	DepOnly    bool
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Module     *struct{ GoVersion string }
	Error      *struct{ Err string }
}

// darwinEnv is the build configuration the packages are checked for.
var darwinEnv = []string{"GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=1"}

// Check loads the packages matching patterns (and all their dependencies) as
// they build on darwin/arm64 with cgo, type-checks them from source, and lints
// the calls in the named packages. Type errors are reported for every package
// outside the standard library (darwinkit included); the panic lint only for
// the named packages.
//
// With tests set, the packages' _test.go files (in-package and external) are
// checked and linted too.
func Check(dir string, tests bool, patterns ...string) ([]Finding, error) {
	r, err := check(dir, tests, patterns)
	if err != nil {
		return nil, err
	}
	return r.findings, nil
}

// result is what check found: the findings, and the darwinkit functions it
// derived as panicking (with the reason), for the tests.
type result struct {
	findings []Finding
	panics   map[*types.Func]string
}

func check(dir string, tests bool, patterns []string) (*result, error) {
	pkgs, err := goList(dir, tests, patterns)
	if err != nil {
		return nil, err
	}
	var findings []Finding
	// A package and its test variant share files: report each problem once.
	seen := make(map[string]bool)
	add := func(f Finding) {
		if key := f.String(); !seen[key] {
			seen[key] = true
			findings = append(findings, f)
		}
	}
	fset := token.NewFileSet()
	checked := make(map[string]*types.Package)
	var targets []*checkedPackage
	var all []*checkedPackage
	for _, lp := range pkgs {
		if lp.ImportPath == "unsafe" {
			checked["unsafe"] = types.Unsafe
			continue
		}
		if strings.HasSuffix(lp.ImportPath, ".test") {
			continue // the generated test main
		}
		if lp.Error != nil && !lp.Standard {
			return nil, fmt.Errorf("package %s: %s", lp.ImportPath, lp.Error.Err)
		}
		cp, errs, err := typeCheck(fset, lp, checked)
		if err != nil {
			return nil, err
		}
		checked[lp.ImportPath] = cp.pkg
		if !lp.Standard {
			for _, e := range errs {
				add(Finding{Pos: fset.Position(e.Pos), Kind: "type", Msg: e.Msg})
			}
			all = append(all, cp)
		}
		if !lp.DepOnly {
			targets = append(targets, cp)
		}
	}
	panics := findPanickingFuncs(all)
	for _, cp := range targets {
		for _, f := range lintCalls(fset, cp, panics) {
			add(f)
		}
	}
	return &result{findings: findings, panics: panics}, nil
}

func goList(dir string, tests bool, patterns []string) ([]*listedPackage, error) {
	args := []string{"list", "-e", "-json=ImportPath,Dir,Standard,DepOnly,GoFiles,CgoFiles,ImportMap,Module,Error", "-deps"}
	if tests {
		// Adds "p [p.test]" (GoFiles include the in-package tests) and
		// "p_test [p.test]" variants.
		args = append(args, "-test")
	}
	args = append(args, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), darwinEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s in %s: %v: %s", strings.Join(patterns, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []*listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, &p)
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("go list %s in %s: no packages", strings.Join(patterns, " "), dir)
	}
	return pkgs, nil
}

// checkedPackage is a type-checked package with its syntax and facts.
type checkedPackage struct {
	pkg   *types.Package
	files []*ast.File
	info  *types.Info
}

// typeCheck checks one package whose imports are already in checked. Standard
// library packages are checked without function bodies: only their API is
// needed and their errors are not reported.
func typeCheck(fset *token.FileSet, lp *listedPackage, checked map[string]*types.Package) (*checkedPackage, []types.Error, error) {
	var files []*ast.File
	for _, name := range append(append([]string(nil), lp.GoFiles...), lp.CgoFiles...) {
		path := filepath.Join(lp.Dir, name)
		mode := parser.SkipObjectResolution
		if !lp.Standard {
			mode |= parser.ParseComments
		}
		f, err := parser.ParseFile(fset, path, nil, mode)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing %s: %v", path, err)
		}
		files = append(files, f)
	}
	var errs []types.Error
	conf := types.Config{
		FakeImportC:      true,
		IgnoreFuncBodies: lp.Standard,
		Sizes:            types.SizesFor("gc", "arm64"),
		Importer: importerFunc(func(path string) (*types.Package, error) {
			if mapped, ok := lp.ImportMap[path]; ok {
				path = mapped
			}
			if p, ok := checked[path]; ok {
				return p, nil
			}
			return nil, fmt.Errorf("package %s imported by %s was not loaded", path, lp.ImportPath)
		}),
		Error: func(err error) {
			if te, ok := err.(types.Error); ok {
				errs = append(errs, te)
			}
		},
	}
	if lp.Module != nil && lp.Module.GoVersion != "" {
		conf.GoVersion = "go" + lp.Module.GoVersion
	}
	info := &types.Info{
		Types:     make(map[ast.Expr]types.TypeAndValue),
		Uses:      make(map[*ast.Ident]types.Object),
		Defs:      make(map[*ast.Ident]types.Object),
		Instances: make(map[*ast.Ident]types.Instance),
	}
	if lp.Standard {
		info = nil
	}
	pkg, _ := conf.Check(lp.ImportPath, fset, files, info)
	return &checkedPackage{pkg: pkg, files: files, info: info}, errs, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
