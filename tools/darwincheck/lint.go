package main

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
)

// objcPath is darwinkit's Objective-C runtime package.
const objcPath = "github.com/progrium/darwinkit/objc"

// findPanickingFuncs returns the functions and methods, among the given
// packages, that call objc.WrapAsProtocol with a type argument that is not an
// interface: WrapAsProtocol panics ("generic type T should be interface type")
// for those on every call. darwinkit v0.5.0 generates such calls for every
// method that takes a protocol object argument (SetComputePipelineState,
// NewComputePipelineStateWithFunctionError, ...). Interface methods that such a
// method implements are included, so calls through darwinkit's P* interfaces
// are caught too. The value says why.
func findPanickingFuncs(pkgs []*checkedPackage) map[*types.Func]string {
	panics := make(map[*types.Func]string)
	for _, cp := range pkgs {
		var found []*types.Func
		for _, f := range cp.files {
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				fn, ok := cp.info.Defs[fd.Name].(*types.Func)
				if !ok {
					continue
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					id := calleeIdent(call.Fun)
					if id == nil {
						return true
					}
					callee, ok := cp.info.Uses[id].(*types.Func)
					if !ok || callee.Pkg() == nil || callee.Pkg().Path() != objcPath || callee.Name() != "WrapAsProtocol" {
						return true
					}
					inst, ok := cp.info.Instances[id]
					if !ok || inst.TypeArgs.Len() == 0 {
						return true
					}
					if t := inst.TypeArgs.At(0); !types.IsInterface(t) {
						if _, seen := panics[fn]; !seen {
							found = append(found, fn)
						}
						panics[fn] = fmt.Sprintf("calls objc.WrapAsProtocol with the non-interface type %s", types.TypeString(t, types.RelativeTo(cp.pkg)))
					}
					return true
				})
			}
		}
		addInterfaceMethods(cp.pkg, found, panics)
	}
	return panics
}

// addInterfaceMethods marks the methods of the package's interfaces that a
// panicking method implements.
func addInterfaceMethods(pkg *types.Package, found []*types.Func, panics map[*types.Func]string) {
	if len(found) == 0 {
		return
	}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		tn, ok := scope.Lookup(name).(*types.TypeName)
		if !ok {
			continue
		}
		iface, ok := tn.Type().Underlying().(*types.Interface)
		if !ok {
			continue
		}
		for _, fn := range found {
			recv := fn.Type().(*types.Signature).Recv()
			if recv == nil {
				continue
			}
			m, _, _ := types.LookupFieldOrMethod(iface, false, pkg, fn.Name())
			im, ok := m.(*types.Func)
			if !ok || !types.Implements(recv.Type(), iface) {
				continue
			}
			if _, seen := panics[im]; !seen {
				panics[im] = fmt.Sprintf("is implemented by %s.%s, which %s", types.TypeString(recv.Type(), types.RelativeTo(pkg)), fn.Name(), panics[fn])
			}
		}
	}
}

// lintCalls reports every call in the package to a function in panics.
func lintCalls(fset *token.FileSet, cp *checkedPackage, panics map[*types.Func]string) []Finding {
	var findings []Finding
	for _, f := range cp.files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			id := calleeIdent(call.Fun)
			if id == nil {
				return true
			}
			fn, ok := cp.info.Uses[id].(*types.Func)
			if !ok {
				return true
			}
			fn = fn.Origin()
			if why, ok := panics[fn]; ok {
				findings = append(findings, Finding{
					Pos:  fset.Position(call.Pos()),
					Kind: "panic",
					Msg:  fmt.Sprintf("%s panics at run time: it %s; make this call through cgo", fn.FullName(), why),
				})
			}
			return true
		})
	}
	return findings
}

// calleeIdent returns the identifier naming the called function, looking
// through selectors and explicit instantiation.
func calleeIdent(fun ast.Expr) *ast.Ident {
	switch e := ast.Unparen(fun).(type) {
	case *ast.Ident:
		return e
	case *ast.SelectorExpr:
		return e.Sel
	case *ast.IndexExpr:
		return calleeIdent(e.X)
	case *ast.IndexListExpr:
		return calleeIdent(e.X)
	}
	return nil
}
