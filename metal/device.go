package metal

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"unsafe"
)

// device is what the executor needs from a GPU: shared-storage buffers and
// an ordered stream of kernel dispatches and copies that runs when it is
// committed. The darwin build implements it with Metal; the tests implement
// it with the CPU shader harness (kernels/mslharness), so that everything
// above this interface (bindings, offsets, parameter blocks, grid shapes,
// when to commit) is tested on Linux.
type device interface {
	name() string
	// workingSet is the memory the GPU can use without paging
	// (recommendedMaxWorkingSetSize on Metal).
	workingSet() int64
	// alloc returns a zeroed shared buffer of n bytes whose host view
	// starts at a page boundary.
	alloc(n int) (*buffer, error)
	release(b *buffer)
	hasKernel(name string) bool
	// dispatch encodes one launch of kernel: groups threadgroups of
	// threads threads, with the buffers bound at their indices. args is
	// the executor's and reused by the next dispatch: a device that keeps
	// the bindings past the call copies them.
	dispatch(kernel string, groups, threads [3]int, args []binding) error
	// submitEarly commits what is encoded so far without waiting, so that
	// the device starts on it while the host encodes the rest; the next
	// commit waits for it too. Only when no handoff is pending.
	submitEarly()
	// copy encodes a copy of n bytes.
	copy(dst *buffer, dstOff int, src *buffer, srcOff, n int) error
	// signalEvent encodes: once everything encoded before it has run, the
	// device's event takes value v.
	signalEvent(v uint64)
	// waitEvent encodes: what is encoded after it waits until the event
	// has at least value v.
	waitEvent(v uint64)
	// commit submits everything encoded since the last commit, runs the
	// handoffs in order as the device reaches them, and waits for it all
	// to finish. A handoff's error does not stop the device (its release
	// is still signalled, or the device would wait forever); commit
	// returns the first error.
	commit(hs []handoff) error
}

// ErrNotAvailable is what New's error wraps when there is no usable Metal
// device (not macOS, no cgo, no device, a GPU the kernels do not support):
// the one case in which a caller should fall back to the CPU, and the only
// one in which the Metal tests skip. A shader Apple's compiler rejects, or
// a pipeline it cannot build, is an error, not this.
var ErrNotAvailable = errors.New("Metal is not available")

func notAvailableError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotAvailable, fmt.Sprintf(format, args...))
}

// pipelines builds each kernel's pipeline on first use and remembers the
// outcome. A kernel the library does not have is absent (its op runs on the
// host); a kernel the library has whose pipeline fails to build is an
// error that dispatch returns, never a silent fallback to the host.
type pipelines[P any] struct {
	// build returns the kernel's pipeline, found=false when no library has
	// the function, or the error building it.
	build func(name string) (p P, found bool, err error)
	m     map[string]pipelineEntry[P]
}

type pipelineEntry[P any] struct {
	p     P
	found bool
	err   error
}

func (ps *pipelines[P]) get(name string) pipelineEntry[P] {
	if e, ok := ps.m[name]; ok {
		return e
	}
	if ps.m == nil {
		ps.m = map[string]pipelineEntry[P]{}
	}
	var e pipelineEntry[P]
	e.p, e.found, e.err = ps.build(name)
	if e.err != nil {
		e.found = true
		e.err = fmt.Errorf("building the pipeline of %s: %w", name, e.err)
	}
	ps.m[name] = e
	return e
}

// has reports whether some library has the kernel (even if its pipeline
// failed: dispatch reports that).
func (ps *pipelines[P]) has(name string) bool { return ps.get(name).found }

// pipeline returns the kernel's pipeline or why there is none.
func (ps *pipelines[P]) pipeline(name string) (P, error) {
	e := ps.get(name)
	if e.err == nil && !e.found {
		e.err = fmt.Errorf("no kernel %s in kernels/msl", name)
	}
	return e.p, e.err
}

// handoff is a point where the device stops for the host within one
// command buffer: when the event reaches reached (signalled by the device
// after the work the host needs), the host runs run and then sets the
// event to release, which the work after it waits for.
type handoff struct {
	reached, release uint64
	run              func() error
}

// buffer is a device buffer in shared storage: data is its host view.
type buffer struct {
	data   []byte
	handle unsafe.Pointer // the device's own reference (an MTLBuffer id on darwin)
}

// binding puts bytes [off, off+n) of buf at [[buffer(index)]]. A kernel
// sees the buffer from off on; n is how much of it the kernel may touch,
// which the test device uses to place a guard page right after it.
type binding struct {
	index int
	buf   *buffer
	off   int
	n     int
}

func (b *buffer) base() uintptr {
	if len(b.data) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b.data[0]))
}

// regions finds the buffer that holds a host address: tensors, routes and
// expert slot pools live in device buffers, and kernels must bind them in
// place rather than through a copy.
type regions struct {
	mu   sync.Mutex
	list []*buffer // sorted by base
}

func (r *regions) add(b *buffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.list), func(i int) bool { return r.list[i].base() >= b.base() })
	r.list = append(r.list, nil)
	copy(r.list[i+1:], r.list[i:])
	r.list[i] = b
}

// remove drops the buffer whose host view starts at base and returns it.
func (r *regions) remove(base uintptr) *buffer {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.list), func(i int) bool { return r.list[i].base() >= base })
	if i == len(r.list) || r.list[i].base() != base {
		return nil
	}
	b := r.list[i]
	r.list = append(r.list[:i], r.list[i+1:]...)
	return b
}

// find returns the buffer holding [p, p+n) and the offset of p in it.
func (r *regions) find(p uintptr, n int) (*buffer, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.list), func(i int) bool { return r.list[i].base() > p }) - 1
	if i < 0 {
		return nil, 0, false
	}
	b := r.list[i]
	off := int(p - b.base())
	if off+n > len(b.data) {
		return nil, 0, false
	}
	return b, off, true
}

// arena holds the small inputs of the ops encoded since the last commit
// (parameter blocks, positions, routing weights): they must stay unchanged
// until the GPU has run, so each gets fresh memory, all reused after the
// commit.
type arena struct {
	chunks []*buffer
	cur    int // chunk being filled
	used   int // bytes used in chunks[cur]
}

const (
	arenaChunk = 1 << 20
	// arenaAlign keeps every upload at an offset any buffer binding accepts.
	arenaAlign = 256
)

func (a *arena) put(alloc func(n int) (*buffer, error), data []byte) (*buffer, int, error) {
	n := max(len(data), 4)
	for a.cur < len(a.chunks) && a.used+n > len(a.chunks[a.cur].data) {
		a.cur++
		a.used = 0
	}
	if a.cur == len(a.chunks) {
		b, err := alloc(max(arenaChunk, (n+arenaAlign-1)/arenaAlign*arenaAlign))
		if err != nil {
			return nil, 0, fmt.Errorf("upload buffer: %w", err)
		}
		a.chunks = append(a.chunks, b)
	}
	b, off := a.chunks[a.cur], a.used
	copy(b.data[off:], data)
	a.used += (n + arenaAlign - 1) / arenaAlign * arenaAlign
	return b, off, nil
}

// reset makes the arena's memory reusable; call it after a commit.
func (a *arena) reset() { a.cur, a.used = 0, 0 }
