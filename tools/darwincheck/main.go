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
// It prints one "file:line:col: message" line per finding and exits 1 when
// there is any, 2 when the packages cannot be loaded.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	dir := flag.String("C", ".", "run `go list` in this directory (the module holding the packages)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: darwincheck [-C dir] packages...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	findings, err := Check(*dir, flag.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "darwincheck:", err)
		os.Exit(2)
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		os.Exit(1)
	}
}
