// Package mslharness compiles the Metal shaders of kernels/msl as C++ and
// runs their kernels on the CPU, so that Linux CI can check every shader
// against its Go reference in package kernels.
//
// A shader is compiled with a C++17 compiler (clang++ by default; MSL_CXX
// overrides) against kernels/msl/compat, which maps Metal's address spaces,
// vector and 16-bit types, SIMD-group functions and barriers onto C++. The
// kernels of a file are found in its preprocessed source: plain kernel
// functions by name, template instantiations by their [[host_name("...")]].
// Launches run in child processes (a crash or deadlock in a shader is an
// error, not a crash of the test), each of which serves launches one after
// another until one fails, with every buffer placed right below an
// inaccessible page, so out-of-bounds accesses past a buffer's end fail.
// With clang, Build also type-checks the shader with Metal's address spaces
// as clang address spaces, which the CPU build cannot see, and reads each
// kernel's threadgroup variables from the runner's symbols: more than
// MaxThreadgroupMemory in a kernel, or a threadgroup variable outside a
// kernel function, is an error, as in Metal. Two threadgroups of a grid run
// at a time, so a kernel that relies on threadgroups running one after
// another shows it. Built runners are cached by content ($MSL_CACHE, else a
// per-user temporary directory).
//
// What this does not show: that the Metal compiler accepts a shader beyond
// C++ and address spaces, Metal's fast-math precision, and timing.
//
// Typical use in a test:
//
//	prog, err := mslharness.Build("../msl/elementwise.metal", "../msl/compat", t.TempDir())
//	out, err := prog.Run("add", mslharness.Launch{
//		Groups: [3]int{4, 1, 1}, Threads: [3]int{256, 1, 1},
//		Buffers: map[int][]byte{0: a, 1: b, 2: out, 3: n},
//	})
package mslharness

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed runner.h
var runnerH []byte

// Compiler returns the C++ compiler to use: $MSL_CXX, else clang++, else
// g++. It returns an error naming .ci/msl-deps when none is installed, and
// one off Linux, where the runners cannot be built (metal_compat.h keeps
// threadgroup memory in an ELF section; macOS wants ucontext's
// _XOPEN_SOURCE); there the Metal tests run the shaders on the GPU.
func Compiler() (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("the shader harness runs on Linux only, not %s", runtime.GOOS)
	}
	if cxx := os.Getenv("MSL_CXX"); cxx != "" {
		return exec.LookPath(cxx)
	}
	for _, c := range []string{"clang++", "g++"} {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no C++ compiler (clang++ or g++) found; run .ci/msl-deps or set MSL_CXX")
}

// Param is one parameter of a kernel and what it is bound to.
type Param struct {
	Name string
	// Attr is the [[...]] attribute without brackets and argument:
	// "buffer", "thread_position_in_grid", ...
	Attr string
	// Buffer is the n of [[buffer(n)]].
	Buffer int
}

// Kernel is one launchable kernel of a shader file.
type Kernel struct {
	// Name is the function name, or the host_name of a template
	// instantiation.
	Name string
	// Fn is the C++ expression naming the function ("qmv<4, 64, bfloat>").
	Fn     string
	Params []Param
	// ThreadgroupBytes is the size of the kernel's threadgroup variables
	// (known for runners built with clang; 0 otherwise).
	ThreadgroupBytes int

	tgMemory tgRange // where they lie in the runner
	tgKnown  bool    // whether tgMemory is known (else the whole section is used)
}

// what maps the supported attributes to runner.h's enum.
var what = map[string]string{
	"buffer":                         "kBuffer",
	"thread_position_in_grid":        "kThreadPositionInGrid",
	"threadgroup_position_in_grid":   "kThreadgroupPositionInGrid",
	"thread_position_in_threadgroup": "kThreadPositionInThreadgroup",
	"threads_per_threadgroup":        "kThreadsPerThreadgroup",
	"threadgroups_per_grid":          "kThreadgroupsPerGrid",
	"threads_per_grid":               "kThreadsPerGrid",
	"thread_index_in_threadgroup":    "kThreadIndexInThreadgroup",
	"thread_index_in_simdgroup":      "kThreadIndexInSimdgroup",
	"simdgroup_index_in_threadgroup": "kSimdgroupIndexInThreadgroup",
	"threads_per_simdgroup":          "kThreadsPerSimdgroup",
	"simdgroups_per_threadgroup":     "kSimdgroupsPerThreadgroup",
}

var (
	kernelRE   = regexp.MustCompile(`__msl_kernel__\s+void\s+(\w+)\s*\(`)
	templateRE = regexp.MustCompile(`template\s*<[^;{}]*>\s*$`)
	instanceRE = regexp.MustCompile(`template\s*\[\[\s*host_name\(\s*((?:"[^"]*"\s*)+)\)\s*\]\]\s*\[\[\s*__msl_kernel__\s*\]\]\s*decltype\(\s*(\w+)\s*(<[^;()]*>)\s*\)`)
	attrRE     = regexp.MustCompile(`\[\[\s*(\w+)\s*(?:\(\s*(\d+)\s*\))?\s*\]\]\s*$`)
	identRE    = regexp.MustCompile(`(\w+)\s*$`)
	// threadgroup right after "(" or "," qualifies a parameter or a cast.
	tgParamRE      = regexp.MustCompile(`([(,]\s*)threadgroup\b`)
	instanceAttrRE = regexp.MustCompile(`\[\[\s*(host_name\s*\([^()]*\)|kernel)\s*\]\]`)
)

// ParseKernels finds the launchable kernels in preprocessed shader source
// (compiled with -DMSL_SCAN, which turns the kernel keyword into a marker):
// kernel functions that are not templates, and explicit instantiations of
// kernel templates written as
//
//	template [[host_name("name")]] [[kernel]] decltype(fn<args>) fn<args>;
func ParseKernels(src string) ([]Kernel, error) {
	var ks []Kernel
	templates := make(map[string][]Param)
	seen := make(map[string]bool)
	add := func(k Kernel) error {
		if seen[k.Name] {
			return fmt.Errorf("kernel name %s is defined twice", k.Name)
		}
		seen[k.Name] = true
		ks = append(ks, k)
		return nil
	}
	for _, m := range kernelRE.FindAllStringSubmatchIndex(src, -1) {
		fn := src[m[2]:m[3]]
		end := matchParen(src, m[1]-1)
		if end < 0 {
			return nil, fmt.Errorf("kernel %s: unbalanced parameter list", fn)
		}
		params, err := parseParams(src[m[1]:end])
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %v", fn, err)
		}
		// A template definition: its instantiations are the kernels.
		prefix := src[max(0, strings.LastIndexAny(src[:m[0]], ";}")+1):m[0]]
		if templateRE.MatchString(prefix) {
			templates[fn] = params
			continue
		}
		if err := add(Kernel{Name: fn, Fn: fn, Params: params}); err != nil {
			return nil, err
		}
	}
	for _, m := range instanceRE.FindAllStringSubmatch(src, -1) {
		params, ok := templates[m[2]]
		if !ok {
			return nil, fmt.Errorf("kernel %s instantiates %s, which is not a kernel template", m[1], m[2])
		}
		// The name may be several adjacent string literals.
		name := strings.Join(strings.FieldsFunc(m[1], func(r rune) bool { return r == '"' || r == ' ' || r == '\t' || r == '\n' }), "")
		if err := add(Kernel{Name: name, Fn: m[2] + m[3], Params: params}); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// matchParen returns the index of the parenthesis closing the one at open.
func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func parseParams(list string) ([]Param, error) {
	var params []Param
	depth, start := 0, 0
	for i := 0; i <= len(list); i++ {
		if i < len(list) {
			switch list[i] {
			case '(', '<', '[':
				depth++
				continue
			case ')', '>', ']':
				depth--
				continue
			case ',':
				if depth != 0 {
					continue
				}
			default:
				continue
			}
		}
		p := strings.TrimSpace(list[start:i])
		start = i + 1
		if p == "" {
			continue
		}
		am := attrRE.FindStringSubmatchIndex(p)
		if am == nil {
			return nil, fmt.Errorf("parameter %q has no [[...]] attribute", p)
		}
		attr := p[am[2]:am[3]]
		if _, ok := what[attr]; !ok {
			return nil, fmt.Errorf("parameter %q: attribute %s is not supported by the harness", p, attr)
		}
		param := Param{Attr: attr}
		if attr == "buffer" {
			if am[4] < 0 {
				return nil, fmt.Errorf("parameter %q: buffer needs an index", p)
			}
			param.Buffer, _ = strconv.Atoi(p[am[4]:am[5]])
		}
		if im := identRE.FindStringSubmatch(p[:am[0]]); im != nil {
			param.Name = im[1]
		}
		params = append(params, param)
	}
	return params, nil
}

// Program is a shader file compiled for the CPU. Its methods may be called
// from several goroutines.
type Program struct {
	File    string
	Kernels map[string]Kernel
	bin     string

	mu   sync.Mutex
	idle []*runner // started runner processes waiting for a launch
}

// runner is one child process running the compiled shader file.
type runner struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer // read only after cmd.Wait
}

// Build compiles the shader file into a runner executable in dir, with the
// Metal-compatibility headers of compat (kernels/msl/compat).
func Build(file, compat, dir string) (*Program, error) {
	cxx, err := Compiler()
	if err != nil {
		return nil, err
	}
	if file, err = filepath.Abs(file); err != nil {
		return nil, err
	}
	if compat, err = filepath.Abs(compat); err != nil {
		return nil, err
	}
	// Read (not just stat) the headers so that go test's cache sees changes.
	for _, h := range []string{"metal_compat.h", "metal_stdlib"} {
		if _, err := os.ReadFile(filepath.Join(compat, h)); err != nil {
			return nil, fmt.Errorf("compat directory %s: %v", compat, err)
		}
	}
	pre, err := exec.Command(cxx, "-std=c++17", "-E", "-P", "-DMSL_SCAN", "-I", compat, "-x", "c++", file).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("preprocessing %s: %v\n%s", file, err, pre)
	}
	ks, err := ParseKernels(string(pre))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("%s: no kernel functions found", file)
	}
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if err := os.WriteFile(filepath.Join(dir, "runner.h"), runnerH, 0o644); err != nil {
		return nil, err
	}
	// Compile a copy of the source: C++ allows no attributes on an explicit
	// instantiation, so drop host_name and [[kernel]] (the names are known
	// from the scan); and threadgroup is `static` in metal_compat.h, which is
	// right for threadgroup variables but not for pointer parameters and
	// casts, where it becomes MSL_THREADGROUP_PARAM.
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	cpuSrc := fmt.Appendf(nil, "#line 1 %q\n%s", file, tgParamRE.ReplaceAll(instanceAttrRE.ReplaceAll(src, nil), []byte("${1}MSL_THREADGROUP_PARAM")))
	cpuFile := filepath.Join(dir, base+".cpu.metal")
	if err := os.WriteFile(cpuFile, cpuSrc, 0o644); err != nil {
		return nil, err
	}
	mainCpp := filepath.Join(dir, base+"_main.cpp")
	mainSrc := generateMain(cpuFile, ks)
	if err := os.WriteFile(mainCpp, mainSrc, 0o644); err != nil {
		return nil, err
	}
	bin, cached, err := cachedBinary(cxx, compat, base, mainSrc, cpuSrc)
	if err != nil {
		return nil, err
	}
	if !cached && bin != "" {
		// Another test binary may be compiling the same runner: wait for it
		// rather than compile it twice.
		unlock := lockFile(bin + ".lock")
		defer unlock()
		_, err := os.Stat(bin)
		cached = err == nil
	}
	if !cached {
		if err := checkAddressSpaces(cxx, compat, cpuFile); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		out := filepath.Join(dir, base)
		cmd := exec.Command(cxx, slices.Concat(cxxFlags, []string{"-I", compat, "-I", dir, "-o", out, mainCpp})...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("compiling %s as C++: %v\n%s", file, err, msg)
		}
		if isClang(cxx) {
			if err := threadgroupLayout(out, ks); err != nil {
				return nil, fmt.Errorf("%s: %v", file, err)
			}
		}
		bin = storeBinary(out, bin)
	} else if isClang(cxx) {
		// A cached runner passed the checks when it was built; this reads
		// where its kernels' threadgroup variables lie.
		if err := threadgroupLayout(bin, ks); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
	}
	p := &Program{File: file, Kernels: make(map[string]Kernel), bin: bin}
	for _, k := range ks {
		p.Kernels[k.Name] = k
	}
	return p, nil
}

var cxxFlags = []string{"-std=c++17", "-O1", "-g0", "-Wall", "-Werror",
	"-Wno-unknown-attributes", "-Wno-attributes", "-Wno-unused-function", "-Wno-unknown-warning-option"}

// cachedBinary returns where the runner built from these inputs is cached
// and whether it is there ("" when there is no usable cache): the shaders
// are compiled by more than one test binary (this package's and the Metal
// executor's), and the big ones take a while. The key covers the compiler
// and its version, the flags (of the build and of the check before it),
// the generated source, the shader and the compat and runner headers.
func cachedBinary(cxx, compat, base string, mainSrc, cpuSrc []byte) (string, bool, error) {
	root := cacheDir()
	if root == "" {
		return "", false, nil
	}
	h := sha256.New()
	version, _ := exec.Command(cxx, "--version").Output()
	for _, part := range [][]byte{[]byte(cxx), version, []byte(strings.Join(cxxFlags, " ")), []byte(strings.Join(checkFlags, " ")), mainSrc, cpuSrc, runnerH} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	for _, name := range []string{"metal_compat.h", "metal_stdlib"} {
		b, err := os.ReadFile(filepath.Join(compat, name))
		if err != nil {
			return "", false, err
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	bin := filepath.Join(root, fmt.Sprintf("%s-%x", base, h.Sum(nil)[:12]))
	_, err := os.Stat(bin)
	return bin, err == nil, nil
}

// cacheDir is $MSL_CACHE, else a directory of this user's under the system
// temporary directory (tests write nothing outside temporary directories),
// created private to the user; "" when it is not usable. A directory that
// others can write to is not used: its runners would be executed.
func cacheDir() string {
	if dir := os.Getenv("MSL_CACHE"); dir != "" {
		return dir
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("mlx-moe-mslharness-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() || st.Mode().Perm()&0o077 != 0 {
		return ""
	}
	return dir
}

// storeBinary copies a freshly built runner into the cache (atomically, as
// several test binaries may build the same one) and returns the path to
// run: the cached copy, or the built one when the cache is not writable.
func storeBinary(built, cached string) string {
	if cached == "" {
		return built
	}
	data, err := os.ReadFile(built)
	if err != nil {
		return built
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return built
	}
	tmp, err := os.CreateTemp(filepath.Dir(cached), filepath.Base(cached)+".tmp*")
	if err != nil {
		return built
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Chmod(tmp.Name(), 0o755) != nil || os.Rename(tmp.Name(), cached) != nil {
		os.Remove(tmp.Name())
		return built
	}
	return cached
}

// checkFlags are the flags of checkAddressSpaces. MSL is based on C++14: a
// C++17 construct in a shader is an error here, though the CPU build
// (C++17, for the runtime) would accept it. Metal allows no mutable
// program-scope variable; a non-const one (without a prior declaration) is
// an error here too (missing-variable-declarations; constexpr constants
// pass).
var checkFlags = []string{"-std=c++14", "-Werror=c++17-extensions", "-Werror=missing-variable-declarations",
	"-fsyntax-only", "-DMSL_ADDRESS_SPACE_CHECK", "-Wno-unknown-attributes"}

// checkAddressSpaces type-checks the shader with Metal's address spaces as
// clang address spaces (metal_compat.h's MSL_ADDRESS_SPACE_CHECK), which
// catches what the empty qualifiers of the CPU build cannot: a device
// pointer passed where a thread pointer is expected, and so on; it also
// holds the shader to C++14 and rejects double and mutable program-scope
// variables, as Metal does. Only clang
// has address spaces in C++; with another compiler the check is skipped.
func checkAddressSpaces(cxx, compat, file string) error {
	if !isClang(cxx) {
		return nil
	}
	out, err := exec.Command(cxx, slices.Concat(checkFlags, []string{"-I", compat, "-x", "c++", file})...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("address-space check (Metal would reject this): %v\n%s", err, out)
	}
	return nil
}

func isClang(cxx string) bool { return strings.Contains(filepath.Base(cxx), "clang") }

func generateMain(file string, ks []Kernel) []byte {
	var b bytes.Buffer
	// By base name (found through -I), so that the text does not depend on
	// the build directory and can key the cache.
	fmt.Fprintf(&b, "// Generated by kernels/mslharness.\n#include \"runner.h\"\n#include %q\n\n", filepath.Base(file))
	for i, k := range ks {
		fmt.Fprintf(&b, "static const mslrt::Binding bindings%d[] = {", i)
		for _, p := range k.Params {
			fmt.Fprintf(&b, "{mslrt::%s, %d}, ", what[p.Attr], p.Buffer)
		}
		b.WriteString("{mslrt::kBuffer, -1}};\n")
	}
	b.WriteString("\nstatic const mslrt::Entry entries[] = {\n")
	for i, k := range ks {
		fmt.Fprintf(&b, "  {%q, bindings%d, %d, mslrt::trampoline<&%s>},\n", k.Name, i, len(k.Params), k.Fn)
	}
	fmt.Fprintf(&b, "};\n\nint main() { return mslrt::run_main(entries, %d); }\n", len(ks))
	return b.Bytes()
}

// Launch is one dispatch: Groups threadgroups of Threads threads each, with
// the given buffers by [[buffer(n)]] index.
type Launch struct {
	Groups, Threads [3]int
	Buffers         map[int][]byte
	// Seed picks the order in which threads run between barriers (0: fixed).
	Seed uint64
}

// Timeout bounds one launch.
var Timeout = 2 * time.Minute

// Run executes the named kernel and returns every buffer as the kernel left
// it. A fault, deadlock or bad binding is an error carrying the runner's
// message.
func (p *Program) Run(kernel string, l Launch) (map[int][]byte, error) {
	k, ok := p.Kernels[kernel]
	if !ok {
		return nil, fmt.Errorf("%s has no kernel %s", p.File, kernel)
	}
	for _, prm := range k.Params {
		if prm.Attr == "buffer" && l.Buffers[prm.Buffer] == nil {
			return nil, fmt.Errorf("kernel %s: parameter %s needs buffer %d", kernel, prm.Name, prm.Buffer)
		}
	}
	for i, d := range l.Groups {
		if d <= 0 || l.Threads[i] <= 0 {
			return nil, fmt.Errorf("kernel %s: groups %v and threads %v must be positive", kernel, l.Groups, l.Threads)
		}
	}
	var in bytes.Buffer
	in.WriteString("MSL2")
	le := binary.LittleEndian
	in.Write(le.AppendUint32(nil, uint32(len(kernel))))
	in.WriteString(kernel)
	for _, v := range append(l.Groups[:], l.Threads[:]...) {
		in.Write(le.AppendUint32(nil, uint32(v)))
	}
	in.Write(le.AppendUint64(nil, l.Seed))
	tg := k.tgMemory
	if !k.tgKnown {
		tg = tgRange{0, ^uint64(0)}
	}
	in.Write(le.AppendUint64(nil, tg.off))
	in.Write(le.AppendUint64(nil, tg.len))
	in.Write(le.AppendUint32(nil, uint32(len(l.Buffers))))
	for idx, data := range l.Buffers {
		in.Write(le.AppendUint32(nil, uint32(idx)))
		in.Write(le.AppendUint64(nil, uint64(len(data))))
		in.Write(data)
	}
	r, err := p.take()
	if err != nil {
		return nil, fmt.Errorf("kernel %s: starting %s: %v", kernel, p.bin, err)
	}
	timer := time.AfterFunc(Timeout, func() { r.cmd.Process.Kill() })
	_, err = r.stdin.Write(in.Bytes())
	var out map[int][]byte
	if err == nil {
		out, err = readBuffers(r.stdout)
	}
	if err == nil && timer.Stop() {
		p.put(r)
		return out, nil
	}
	// The runner failed (it printed why and exited) or was killed by the
	// timer: its exit status and stderr say what happened.
	r.stdin.Close()
	if werr := r.cmd.Wait(); werr != nil {
		err = werr
	}
	timer.Stop()
	return nil, fmt.Errorf("kernel %s: %v: %s", kernel, err, strings.TrimSpace(r.stderr.String()))
}

// take returns an idle runner process or starts one.
func (p *Program) take() (*runner, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		r := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return r, nil
	}
	p.mu.Unlock()
	r := &runner{cmd: exec.Command(p.bin)}
	r.cmd.Stderr = &r.stderr
	var err error
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	r.stdout = bufio.NewReaderSize(stdout, 1<<16)
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	return r, nil
}

func (p *Program) put(r *runner) {
	p.mu.Lock()
	p.idle = append(p.idle, r)
	p.mu.Unlock()
}

// Close ends the program's idle runner processes. Runners also end by
// themselves when the test process exits (their stdin closes).
func (p *Program) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var errs []error
	for _, r := range idle {
		r.stdin.Close()
		if err := r.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("runner of %s: %v: %s", p.File, err, strings.TrimSpace(r.stderr.String())))
		}
	}
	return errors.Join(errs...)
}

func readBuffers(r io.Reader) (map[int][]byte, error) {
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("runner output: %v", err)
	}
	out := make(map[int][]byte, n)
	for range n {
		var hdr struct {
			Index uint32
			Len   uint64
		}
		if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
			return nil, fmt.Errorf("runner output: %v", err)
		}
		data := make([]byte, hdr.Len)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("runner output: buffer %d: %v", hdr.Index, err)
		}
		out[int(hdr.Index)] = data
	}
	return out, nil
}
