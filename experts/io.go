package experts

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// ReadAtFunc reads len(p) bytes of f at off, like (*os.File).ReadAt. Config.ReadAt
// replaces it in tests to inject faults (EIO, short reads).
type ReadAtFunc func(f *os.File, p []byte, off int64) (int, error)

func osReadAt(f *os.File, p []byte, off int64) (int, error) { return f.ReadAt(p, off) }

// Sizes of the reads the IO pool issues.
const (
	maxRun    = 2 << 20  // largest single read; also the size of each worker's bounce buffer for O_DIRECT
	directGap = 64 << 10 // O_DIRECT reads bridge holes up to this size between extents
)

// bounceBytes is the size of a worker's O_DIRECT bounce buffer, allocated on
// its first read of a part that cannot be read in place.
const bounceBytes = maxRun + 2*directGap + 2*SlotAlign

// IOScratchBytes is the most memory the IO workers' bounce buffers take with
// O_DIRECT (none are needed where every part is read in place).
func IOScratchBytes() int64 { return defaultIOWorkers * bounceBytes }

// modelFile is one safetensors file the experts live in, opened once.
type modelFile struct {
	name   string
	f      *os.File
	direct atomic.Pointer[os.File] // nil when O_DIRECT is off or was found unusable
	size   int64
	mtime  time.Time

	mu         sync.Mutex
	directNote string // why O_DIRECT is not used for this file, if asked for
}

func openModelFile(name string, direct bool) (*modelFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("experts: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("experts: %w", err)
	}
	m := &modelFile{name: name, f: f, size: st.Size(), mtime: st.ModTime()}
	if direct {
		d, err := openDirect(name)
		if err != nil {
			m.directNote = err.Error()
		} else {
			m.direct.Store(d)
		}
	}
	return m, nil
}

// disableDirect falls back to buffered reads after the file system refused
// an O_DIRECT read (some accept the open flag and fail the read).
func (m *modelFile) disableDirect(err error) {
	if d := m.direct.Swap(nil); d != nil {
		d.Close()
		m.mu.Lock()
		m.directNote = fmt.Sprintf("O_DIRECT read refused (%v); using buffered reads", err)
		m.mu.Unlock()
	}
}

func (m *modelFile) note() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.directNote
}

func (m *modelFile) close() {
	if d := m.direct.Swap(nil); d != nil {
		d.Close()
	}
	m.f.Close()
}

// changed reports how the file on disk differs from when it was opened, or "".
func (m *modelFile) changed() string {
	st, err := os.Stat(m.name)
	switch {
	case err != nil:
		return fmt.Sprintf("model file %s changed on disk since start: %v", m.name, err)
	case st.Size() != m.size:
		return fmt.Sprintf("model file %s changed on disk since start: size %d, was %d", m.name, st.Size(), m.size)
	case !st.ModTime().Equal(m.mtime):
		return fmt.Sprintf("model file %s changed on disk since start: modified %s, was %s", m.name, st.ModTime().Format(time.RFC3339Nano), m.mtime.Format(time.RFC3339Nano))
	}
	return ""
}

// piece is one extent of one expert and the slot memory it goes to.
type piece struct {
	off int64
	dst []byte
	ld  *load
	// cover is the slot memory of the piece's block-aligned file range
	// (dst lies inside it at off's remainder modulo SlotAlign), when the
	// layout reserved it for an in-place O_DIRECT read; else nil.
	cover []byte
}

// ioRun is one read: a file range covering one or more pieces.
type ioRun struct {
	file   *modelFile
	off, n int64
	pieces []piece
	// into, when set, is slot memory for an O_DIRECT read of the
	// block-aligned file range starting at off; n bytes of it must be read,
	// the rest is padding that may lie past the end of the file.
	into []byte
	done func(run *ioRun, err error)
}

// planRuns sorts the pieces by file position and merges neighbours into runs:
// buffered reads merge pieces adjacent both in the file and in memory (one
// pread straight into the slot); O_DIRECT reads of pieces with a cover go
// straight into the slot, one run per maxRun of it; other O_DIRECT reads go
// through a bounce buffer anyway, so they merge pieces up to directGap apart
// in the file.
func planRuns(files map[string]*modelFile, ps []piece, names []string) []*ioRun {
	type item struct {
		file *modelFile
		p    piece
	}
	items := make([]item, len(ps))
	for i, p := range ps {
		items[i] = item{files[names[i]], p}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.file.name, b.file.name), cmp.Compare(a.p.off, b.p.off))
	})
	var runs []*ioRun
	var cur *ioRun
	for _, it := range items {
		p := it.p
		if p.cover != nil && it.file.direct.Load() != nil {
			runs = append(runs, inPlaceRuns(it.file, p)...)
			cur = nil
			continue
		}
		for len(p.dst) > 0 {
			// A piece larger than maxRun is split so that big experts still
			// spread over the workers and fit the bounce buffer.
			head := p
			head.cover = nil
			if int64(len(head.dst)) > maxRun {
				head.dst = head.dst[:maxRun]
			}
			p.off += int64(len(head.dst))
			p.dst = p.dst[len(head.dst):]
			if cur != nil && cur.file == it.file && canMerge(cur, head) {
				end := head.off + int64(len(head.dst))
				if it.file.direct.Load() != nil {
					cur.pieces = append(cur.pieces, head)
				} else {
					last := &cur.pieces[len(cur.pieces)-1]
					last.dst = last.dst[:len(last.dst)+len(head.dst)]
				}
				cur.n = end - cur.off
				continue
			}
			cur = &ioRun{file: it.file, off: head.off, n: int64(len(head.dst)), pieces: []piece{head}}
			runs = append(runs, cur)
		}
	}
	return runs
}

// inPlaceRuns splits the cover of a piece into reads of at most maxRun
// block-aligned bytes, each straight into the slot. Each run keeps the part
// of the piece it carries, for errors and for the buffered fallback.
func inPlaceRuns(f *modelFile, p piece) []*ioRun {
	start := p.off - p.off%SlotAlign
	end := p.off + int64(len(p.dst))
	var runs []*ioRun
	for at := int64(0); at < int64(len(p.cover)) && start+at < end; at += maxRun {
		into := p.cover[at:min(at+maxRun, int64(len(p.cover)))]
		lo, hi := max(p.off, start+at), min(end, start+at+int64(len(into)))
		sub := piece{off: lo, dst: p.dst[lo-p.off : hi-p.off], ld: p.ld}
		runs = append(runs, &ioRun{file: f, off: start + at, n: hi - (start + at), into: into, pieces: []piece{sub}})
	}
	return runs
}

func canMerge(r *ioRun, p piece) bool {
	end := p.off + int64(len(p.dst))
	if p.off < r.off+r.n || end-r.off > maxRun {
		return false
	}
	if r.file.direct.Load() != nil {
		return p.off-(r.off+r.n) <= directGap
	}
	last := r.pieces[len(r.pieces)-1]
	return p.off == r.off+r.n && p.ld == last.ld && contiguous(last.dst, p.dst)
}

// contiguous reports whether b starts right where a ends in memory (and a
// may be extended over it).
func contiguous(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 || cap(a) < len(a)+len(b) {
		return false
	}
	return &a[:len(a)+1][len(a)] == &b[0]
}

// ioPool is the small set of goroutines that read experts. Loads a caller
// waits for (exact misses) go to hi and are served before prefetches and the
// background loads of the fast policy (lo).
type ioPool struct {
	hi, lo chan *ioRun
	quit   chan struct{}
	wg     sync.WaitGroup
	readAt ReadAtFunc

	mu         sync.Mutex
	active     int // reads in progress
	maxActive  int
	busySince  time.Time // when active last rose from 0
	lastChange time.Time // when active last changed
	busy       time.Duration
	depthArea  float64 // integral of active over time, in read-seconds
}

func newIOPool(workers int, readAt ReadAtFunc) *ioPool {
	p := &ioPool{hi: make(chan *ioRun, 1024), lo: make(chan *ioRun, 1024), quit: make(chan struct{}), readAt: readAt}
	for range workers {
		p.wg.Go(p.work)
	}
	return p
}

func (p *ioPool) close() {
	close(p.quit)
	p.wg.Wait()
}

// track counts a read starting (+1) or ending (-1).
func (p *ioPool) track(delta int) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active > 0 {
		p.depthArea += float64(p.active) * now.Sub(p.lastChange).Seconds()
	}
	if p.active == 0 {
		p.busySince = now
	}
	p.active += delta
	p.maxActive = max(p.maxActive, p.active)
	if p.active == 0 {
		p.busy += now.Sub(p.busySince)
	}
	p.lastChange = now
}

// ioCounters are the pool's totals: busy is the wall time during which at
// least one read was in progress (bytes read over busy time is the pager's
// read bandwidth); depth is the mean number of reads in progress during it.
type ioCounters struct {
	busy     time.Duration
	depth    float64
	maxDepth int
}

func (p *ioPool) counters() ioCounters {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	c := ioCounters{busy: p.busy, maxDepth: p.maxActive}
	area := p.depthArea
	if p.active > 0 {
		c.busy += now.Sub(p.busySince)
		area += float64(p.active) * now.Sub(p.lastChange).Seconds()
	}
	if c.busy > 0 {
		c.depth = area / c.busy.Seconds()
	}
	return c
}

func (p *ioPool) work() {
	var scratch []byte
	for {
		var r *ioRun
		select {
		case r = <-p.hi:
		default:
			select {
			case r = <-p.hi:
			case r = <-p.lo:
			case <-p.quit:
				return
			}
		}
		p.track(+1)

		var err error
		if d := r.file.direct.Load(); d != nil {
			if scratch == nil {
				scratch = alignedBytes(bounceBytes)
			}
			err = p.readDirect(d, r, scratch)
			if errors.Is(err, syscall.EINVAL) {
				r.file.disableDirect(err)
				err = p.readBuffered(r)
			}
		} else {
			err = p.readBuffered(r)
		}

		p.track(-1)
		r.done(r, err)
	}
}

func (p *ioPool) readBuffered(r *ioRun) error {
	for _, pc := range r.pieces {
		if err := p.readFull(r.file, r.file.f, pc.dst, pc.off); err != nil {
			return err
		}
	}
	return nil
}

// readDirect reads a run with O_DIRECT: straight into the slot when the run
// has one, else the block-aligned cover into the bounce buffer, whose pieces
// are then copied out.
func (p *ioPool) readDirect(d *os.File, r *ioRun, scratch []byte) error {
	start, buf, need := r.off, r.into, r.n
	if buf == nil {
		start = r.off &^ (SlotAlign - 1)
		buf = scratch[:alignUp(r.off+r.n, SlotAlign)-start]
		need = r.off + r.n - start
	}
	skip := r.off - start
	got := 0
	for int64(got) < need {
		n, err := p.readAt(d, buf[got:], start+int64(got))
		got += n
		if int64(got) >= need {
			break // reading past the end of the file is expected here
		}
		if err == io.EOF || (err == nil && n == 0) {
			return fmt.Errorf("short read of %s at offset %d: got %d of %d bytes", r.file.name, r.off, max(0, int64(got)-skip), r.n-skip)
		}
		if err != nil {
			return fmt.Errorf("read %s at offset %d (%d bytes, O_DIRECT): %w", r.file.name, start+int64(got), len(buf)-got, err)
		}
	}
	if r.into == nil {
		for _, pc := range r.pieces {
			copy(pc.dst, buf[pc.off-start:])
		}
	}
	return nil
}

func (p *ioPool) readFull(m *modelFile, f *os.File, b []byte, off int64) error {
	want, at := len(b), off
	for len(b) > 0 {
		n, err := p.readAt(f, b, at)
		b, at = b[n:], at+int64(n)
		if len(b) == 0 {
			return nil
		}
		if err == io.EOF || (err == nil && n == 0) {
			return fmt.Errorf("short read of %s at offset %d: got %d of %d bytes", m.name, off, want-len(b), want)
		}
		if err != nil {
			return fmt.Errorf("read %s at offset %d (%d bytes): %w", m.name, at, len(b), err)
		}
	}
	return nil
}

// alignedBytes returns n bytes starting at a SlotAlign boundary, as O_DIRECT
// requires of its buffers.
func alignedBytes(n int) []byte {
	b := make([]byte, n+SlotAlign)
	skip := (SlotAlign - int(uintptr(unsafe.Pointer(&b[0]))%SlotAlign)) % SlotAlign
	return b[skip : skip+n : skip+n]
}
