package metal

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/kernels/msl"
	"github.com/mlx-moe/mlx-moe/kernels/mslharness"
)

// harnessDevice runs each dispatch at once on the CPU through
// kernels/mslharness (the shaders compiled as C++), so the executor's
// encoding (kernel names, buffer indices and offsets, parameter blocks,
// grids) is tested against the CPU executor on Linux. Each binding is
// passed as exactly the bytes it declares, right below a guard page, so a
// kernel that reads past what the executor bound faults.
//
// It runs work at encode time while Metal runs it at commit; the executor
// only writes device memory from the host after a commit, so both orders
// give the same result. The exception is work behind an event wait (MoE's
// event form): from the first wait on, or from the start under deferAll,
// work is queued and commit runs it in order, running each handoff when
// the queue reaches a wait for its release, as Metal would. deferAll makes
// a host that reads device results at encode time (too early on a GPU)
// see stale data.
type harnessDevice struct {
	pipes      pipelines[*mslharness.Program] // the programs by kernel name
	dispatches map[string]int
	copies     int
	commits    int
	early      int // submitEarly calls
	// inBuffer counts the dispatches since the last commit (early or
	// not), longestBuffer the most a command buffer got.
	inBuffer, longestBuffer int
	deferAll                bool
	queue                   []func(hs []handoff) error
	event                   uint64
	handoffs                int // run so far
	// live is how many buffers are allocated and not released, liveBytes
	// their size; allocs counts every allocation.
	live, allocs int
	liveBytes    int64
}

var (
	harnessOnce  sync.Once
	harnessDir   string // the shaders' build directory
	harnessProgs map[string]*mslharness.Program
	harnessErr   error
)

// TestMain ends the shader runner processes and removes their build
// directory after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	closed := map[*mslharness.Program]bool{}
	for _, p := range harnessProgs {
		if !closed[p] {
			closed[p] = true
			if err := p.Close(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	if harnessDir != "" {
		os.RemoveAll(harnessDir)
	}
	os.Exit(code)
}

// newHarnessDevice compiles every shader of kernels/msl once per test
// binary; it skips the test when no C++ compiler is installed.
func newHarnessDevice(t testing.TB) *harnessDevice {
	t.Helper()
	if _, err := mslharness.Compiler(); err != nil {
		t.Skip(err)
	}
	harnessOnce.Do(func() { harnessProgs, harnessErr = buildShaders() })
	if harnessErr != nil {
		t.Fatal(harnessErr)
	}
	return harnessDeviceOf(harnessProgs, nil)
}

// harnessDeviceOf is a harness device over compiled programs (by kernel
// name) and kernels whose shader failed to compile (their pipelines fail to
// build, as a shader Apple's compiler rejects does on a Mac).
func harnessDeviceOf(progs map[string]*mslharness.Program, broken map[string]error) *harnessDevice {
	d := &harnessDevice{dispatches: map[string]int{}}
	d.pipes.build = func(name string) (*mslharness.Program, bool, error) {
		if err := broken[name]; err != nil {
			return nil, true, err
		}
		p := progs[name]
		return p, p != nil, nil
	}
	return d
}

func buildShaders() (map[string]*mslharness.Program, error) {
	dir, err := os.MkdirTemp("", "metal-harness")
	if err != nil {
		return nil, err
	}
	harnessDir = dir
	names := msl.Names()
	progs := make([]*mslharness.Program, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sub := filepath.Join(dir, name)
			if errs[i] = os.MkdirAll(sub, 0o755); errs[i] == nil {
				progs[i], errs[i] = mslharness.Build(filepath.Join("..", "kernels", "msl", name), filepath.Join("..", "kernels", "msl", "compat"), sub)
			}
		})
	}
	wg.Wait()
	byKernel := map[string]*mslharness.Program{}
	for i, p := range progs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		for k := range p.Kernels {
			byKernel[k] = p
		}
	}
	return byKernel, nil
}

func (d *harnessDevice) name() string      { return "CPU shader harness" }
func (d *harnessDevice) workingSet() int64 { return 1 << 30 }

const harnessPage = 4096

func (d *harnessDevice) alloc(n int) (*buffer, error) {
	raw := make([]byte, n+harnessPage)
	off := (harnessPage - int(uintptr(unsafe.Pointer(&raw[0]))%harnessPage)) % harnessPage
	d.live++
	d.allocs++
	d.liveBytes += int64(n)
	return &buffer{data: raw[off : off+n : off+n]}, nil
}

func (d *harnessDevice) release(b *buffer) {
	d.live--
	d.liveBytes -= int64(cap(b.data))
}

func (d *harnessDevice) hasKernel(name string) bool { return d.pipes.has(name) }

// enqueue runs f now, or queues it when the device is deferring work.
func (d *harnessDevice) enqueue(f func(hs []handoff) error) error {
	if d.deferAll || len(d.queue) > 0 {
		d.queue = append(d.queue, f)
		return nil
	}
	return f(nil)
}

func (d *harnessDevice) dispatch(kernel string, groups, threads [3]int, args []binding) error {
	if _, err := d.pipes.pipeline(kernel); err != nil {
		return err
	}
	d.inBuffer++
	d.longestBuffer = max(d.longestBuffer, d.inBuffer)
	args = slices.Clone(args) // the executor reuses its slice
	return d.enqueue(func([]handoff) error { return d.runKernel(kernel, groups, threads, args) })
}

func (d *harnessDevice) runKernel(kernel string, groups, threads [3]int, args []binding) error {
	p, err := d.pipes.pipeline(kernel)
	if err != nil {
		return err
	}
	in := map[int][]byte{}
	for _, a := range args {
		if a.off < 0 || a.n <= 0 || a.off+a.n > len(a.buf.data) {
			return fmt.Errorf("buffer %d: bytes [%d,%d) of a %d-byte buffer", a.index, a.off, a.off+a.n, len(a.buf.data))
		}
		if _, dup := in[a.index]; dup {
			return fmt.Errorf("buffer %d bound twice", a.index)
		}
		in[a.index] = bytes.Clone(a.buf.data[a.off : a.off+a.n])
	}
	out, err := p.Run(kernel, mslharness.Launch{Groups: groups, Threads: threads, Buffers: in})
	if err != nil {
		return err
	}
	d.dispatches[kernel]++
	// Bindings may alias (out = a + b with out == a): copy back only the
	// bytes a kernel changed.
	for _, a := range args {
		got, before := out[a.index], in[a.index]
		if len(got) != len(before) {
			return fmt.Errorf("buffer %d came back with %d bytes, sent %d", a.index, len(got), len(before))
		}
		dst := a.buf.data[a.off : a.off+a.n]
		for i := range got {
			if got[i] != before[i] {
				dst[i] = got[i]
			}
		}
	}
	return nil
}

func (d *harnessDevice) copy(dst *buffer, dstOff int, src *buffer, srcOff, n int) error {
	if dstOff < 0 || srcOff < 0 || dstOff+n > len(dst.data) || srcOff+n > len(src.data) {
		return fmt.Errorf("copy of %d bytes from %d of %d to %d of %d out of range", n, srcOff, len(src.data), dstOff, len(dst.data))
	}
	return d.enqueue(func([]handoff) error {
		copy(dst.data[dstOff:dstOff+n], src.data[srcOff:srcOff+n])
		d.copies++
		return nil
	})
}

// submitEarly only counts: the harness runs work as it is encoded (or
// queues it behind an event wait, in order, which an early commit keeps).
func (d *harnessDevice) submitEarly() { d.early++; d.inBuffer = 0 }

func (d *harnessDevice) signalEvent(v uint64) {
	d.enqueue(func([]handoff) error { d.event = v; return nil })
}

// waitEvent always queues, so that what follows it runs at commit.
func (d *harnessDevice) waitEvent(v uint64) {
	d.queue = append(d.queue, func(hs []handoff) error {
		for _, h := range hs {
			if d.event >= v {
				break
			}
			if h.release != v {
				continue
			}
			if d.event < h.reached {
				return fmt.Errorf("deadlock: waiting for event %d, the event is at %d and the handoff needs %d", v, d.event, h.reached)
			}
			d.handoffs++
			err := h.run()
			d.event = h.release
			if err != nil {
				return err
			}
		}
		if d.event < v {
			return fmt.Errorf("deadlock: waiting for event %d, no handoff releases it (event at %d)", v, d.event)
		}
		return nil
	})
}

func (d *harnessDevice) commit(hs []handoff) error {
	d.commits++
	d.inBuffer = 0
	q := d.queue
	d.queue = nil
	var first error
	for _, f := range q {
		if err := f(hs); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// summary describes what ran, for test logs.
func (d *harnessDevice) summary() string {
	names := make([]string, 0, len(d.dispatches))
	total := 0
	for k, v := range d.dispatches {
		names = append(names, k)
		total += v
	}
	sort.Strings(names)
	return fmt.Sprintf("%d dispatches of %d kernels %v, %d copies, %d commits (%d early), %d handoffs", total, len(names), names, d.copies, d.commits, d.early, d.handoffs)
}

// maxRelDiff is max|a-b| / max|b|.
func maxRelDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d, scale float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return d / math.Max(scale, 1e-6)
}
