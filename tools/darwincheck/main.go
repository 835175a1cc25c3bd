// Command darwincheck type-checks Go packages as they would build on macOS
// (GOOS=darwin, GOARCH=arm64, cgo on) without a Mac or a C toolchain, and
// flags calls to darwinkit methods that are known to panic at run time.
//
// It exists because the Metal executor (metal/) is cgo code for darwin that
// cannot be compiled on the Linux CI machines: go/types with FakeImportC
// checks everything except the C side, from source, including darwinkit.
//
// Usage, from inside the module that holds the packages:
//
//	darwincheck ./metal/...
//
// It prints one "file:line:col: kind: message" line per finding (kind is
// "type" or "panic") and exits 1 when there is any, 2 when the packages
// cannot be loaded. -panics also lists the darwinkit functions it derived as
// panicking.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
)

func main() {
	dir := flag.String("C", ".", "run `go list` in this directory (the module holding the packages)")
	listPanics := flag.Bool("panics", false, "also print the darwinkit functions derived as panicking, with the reason")
	tests := flag.Bool("tests", false, "also check the packages' _test.go files")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: darwincheck [-C dir] [-tests] [-panics] packages...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	r, err := check(*dir, *tests, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "darwincheck:", err)
		os.Exit(2)
	}
	if *listPanics {
		var lines []string
		for fn, why := range r.panics {
			lines = append(lines, fmt.Sprintf("%s: %s", fn.FullName(), why))
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	findings := r.findings
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		os.Exit(1)
	}
}
