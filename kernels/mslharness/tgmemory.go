package mslharness

import (
	"debug/elf"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// MaxThreadgroupMemory is the threadgroup memory a kernel may use on Apple
// GPUs (maxThreadgroupMemoryLength, 32 KiB from the Apple4 family on); a
// kernel that declares more fails to build its pipeline.
const MaxThreadgroupMemory = 32 << 10

// tgRange is where a kernel's threadgroup variables lie in the runner's
// threadgroup section.
type tgRange struct{ off, len uint64 }

// tgSection is metal_compat.h's section for threadgroup variables on ELF.
const tgSection = "msl_threadgroup"

// threadgroupLayout reads the threadgroup variables of a runner built with
// clang (whose function-local statics, template instances' included, land
// in the threadgroup section) and attributes each to its kernel. As Metal
// does, it rejects a threadgroup variable outside a kernel function (at
// program scope or in a helper) and a kernel whose threadgroup variables
// exceed MaxThreadgroupMemory. It sets each kernel's threadgroup range and
// size.
func threadgroupLayout(bin string, ks []Kernel) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("reading the runner's threadgroup variables: %v", err)
	}
	defer f.Close()
	for i := range ks {
		ks[i].tgKnown = true
	}
	sec := -1
	for i, s := range f.Sections {
		if s.Name == tgSection {
			sec = i
		}
	}
	if sec < 0 {
		return nil // no threadgroup variables
	}
	syms, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("reading the runner's symbols: %v", err)
	}
	type variable struct {
		mangled string
		off     uint64
		size    uint64
	}
	var vars []variable
	base := f.Sections[sec].Addr
	for _, s := range syms {
		if int(s.Section) == sec && s.Size > 0 {
			vars = append(vars, variable{s.Name, s.Value - base, s.Size})
		}
	}
	if len(vars) == 0 {
		return nil
	}
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.mangled
	}
	demangled, err := demangle(names)
	if err != nil {
		return err
	}
	byFn := make(map[string]int)
	for i, k := range ks {
		byFn[strings.ReplaceAll(k.Fn, " ", "")] = i
	}
	lo := make([]uint64, len(ks))
	hi := make([]uint64, len(ks))
	for i, v := range vars {
		fn, name, ok := enclosingFunction(demangled[i])
		k, isKernel := byFn[fn]
		if !ok || !isKernel {
			where := "at program scope"
			if ok {
				where = "in " + fn + ", which is not a kernel"
			}
			return fmt.Errorf("threadgroup variable %s is declared %s; Metal allows threadgroup variables only in a kernel function's scope", name, where)
		}
		if ks[k].ThreadgroupBytes == 0 || v.off < lo[k] {
			lo[k] = v.off
		}
		hi[k] = max(hi[k], v.off+v.size)
		ks[k].ThreadgroupBytes += int(v.size)
	}
	for i := range ks {
		k := &ks[i]
		if k.ThreadgroupBytes > MaxThreadgroupMemory {
			return fmt.Errorf("kernel %s declares %d bytes of threadgroup memory; Metal allows %d", k.Name, k.ThreadgroupBytes, MaxThreadgroupMemory)
		}
		if k.ThreadgroupBytes > 0 {
			k.tgMemory = tgRange{lo[i], hi[i] - lo[i]}
		}
	}
	return nil
}

// intSuffixRE matches the suffix the demangler gives integer template
// arguments of unsigned or long type (sdpa_q<8u>), which the source does
// not write.
var intSuffixRE = regexp.MustCompile(`\b(\d+)(?:ull|ul|ll|u|l)\b`)

// enclosingFunction splits a demangled local static ("void qmm<4, 64,
// bfloat>(unsigned int const*, ...)::xs") into its function's name with
// template arguments and without spaces ("qmm<4,64,bfloat>") and the
// variable's name; ok is false for a variable at program scope.
func enclosingFunction(d string) (fn, name string, ok bool) {
	end := strings.LastIndex(d, ")::")
	if end < 0 {
		return "", d, false
	}
	name = d[end+3:]
	sig := strings.TrimPrefix(d[:end+1], "void ")
	depth := 0
	for i, c := range sig {
		switch c {
		case '<':
			depth++
		case '>':
			depth--
		case '(':
			if depth == 0 {
				return intSuffixRE.ReplaceAllString(strings.ReplaceAll(sig[:i], " ", ""), "$1"), name, true
			}
		}
	}
	return "", name, false
}

// demangle runs c++filt (binutils, installed with the compilers) over the
// names, one per line.
func demangle(names []string) ([]string, error) {
	tool := ""
	for _, c := range []string{"c++filt", "llvm-cxxfilt"} {
		if p, err := exec.LookPath(c); err == nil {
			tool = p
			break
		}
	}
	if tool == "" {
		return nil, fmt.Errorf("checking threadgroup variables needs c++filt (binutils) or llvm-cxxfilt; run .ci/msl-deps")
	}
	cmd := exec.Command(tool)
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", tool, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(names) {
		return nil, fmt.Errorf("%s returned %d names for %d", tool, len(lines), len(names))
	}
	return lines, nil
}
