package experts

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
	"unsafe"
)

// Config describes the experts to page and how.
type Config struct {
	// Layers is indexed by decoder layer; a layer without experts (a dense
	// layer, or a zero LayerSpec) has no pager state.
	Layers []LayerSpec
	// Capacity is the number of slots of every MoE layer (see NewPlan).
	Capacity int
	// Policy is Exact or Fast (OS needs no pager).
	Policy Policy
	// Allocator provides slot pools and tables; nil means DefaultAllocator().
	Allocator SlotAllocator
	// IOWorkers is the number of goroutines reading experts, hence the
	// most reads in flight; 0 means 16.
	IOWorkers int
	// DirectIO reads with O_DIRECT (F_NOCACHE on macOS) where the file
	// system allows it; Stats.DirectIO says where it did not.
	DirectIO bool
	// HalfLife is the number of Resolve calls of a layer after which a use
	// of an expert counts half in its eviction score; 0 means 64.
	HalfLife float64
	// ReadAt replaces (*os.File).ReadAt, for tests that inject read faults.
	ReadAt ReadAtFunc

	// ReadAhead asks the kernel to start every buffered read of a batch at
	// once (posix_fadvise WILLNEED; F_RDADVISE on macOS) before the IO
	// workers issue them. Off by default: on a Linux virtual disk it changed
	// nothing measurable (BenchmarkPagerLoad/buffered-cold); untried on macOS.
	// O_DIRECT reads never use it.
	ReadAhead bool
}

// defaultIOWorkers: enough reads in flight for an NVMe drive (Apple's want
// 16 and more); each blocked worker holds an OS thread, nothing else.
const defaultIOWorkers = 16

// slot states
const (
	slotFree uint8 = iota
	slotLoading
	slotResident
)

// asyncBatches bounds the background loads (prefetch, fast misses) in
// flight at once; more are dropped rather than queued behind stale work.
const asyncBatches = 64

// Pager keeps a fixed number of experts per MoE layer resident in slots and
// loads the routed ones from the model files on demand. See the package
// documentation for the contract with the engine.
type Pager struct {
	cfg    Config
	layers []*layerState
	files  map[string]*modelFile
	io     *ioPool
	alloc  SlotAllocator

	life   sync.RWMutex // Close takes it exclusively
	closed bool
	async  sync.WaitGroup
	asyncN chan struct{}
}

type layerState struct {
	index  int
	spec   LayerSpec
	layout LayerLayout

	resolveMu sync.Mutex // serialises Resolve, Fill and Pin of this layer
	mu        sync.Mutex // guards everything below

	pool     []byte
	tableBuf []byte
	table    []int32 // expert -> slot, -1 when not resident
	owner    []int32 // slot -> expert it holds or is loading, -1 when free
	state    []uint8 // per slot
	pinned   []bool  // per expert
	inflight map[int32]*load
	distinct []int32 // begin's distinct ids, reused (resolveMu guards it)

	// Eviction score: freq[e] is a sum over e's uses of inc at the time of
	// the use; inc grows by 2^(1/HalfLife) per Resolve, so comparing freq
	// compares exponentially decayed use counts without touching every
	// expert on every call.
	freq   []float64
	last   []int64 // tick of e's latest use
	cur    []int64 // tick of the latest Resolve that routed e; protected while == tick
	pref   []int64 // tick at which Prefetch last started loading e
	tick   int64
	inc    float64
	growth float64

	stats LayerStats
}

// load is one expert being read into a slot.
type load struct {
	expert int32
	slot   int32
	done   chan struct{} // closed when finished; err is set before
	err    error
}

// New opens the model files, allocates the slot pools and starts the IO
// workers. The slots start empty; fill them with Fill, Pin or warm start.
func New(cfg Config) (*Pager, error) {
	if cfg.Policy != Exact && cfg.Policy != Fast {
		return nil, fmt.Errorf("experts: policy %s needs no pager", cfg.Policy)
	}
	if cfg.Capacity <= 0 {
		return nil, fmt.Errorf("experts: capacity %d (want at least 1 slot per layer)", cfg.Capacity)
	}
	if cfg.IOWorkers <= 0 {
		cfg.IOWorkers = defaultIOWorkers
	}
	if cfg.HalfLife <= 0 {
		cfg.HalfLife = 64
	}
	if cfg.ReadAt == nil {
		cfg.ReadAt = osReadAt
	}
	p := &Pager{cfg: cfg, files: map[string]*modelFile{}, alloc: cfg.Allocator, asyncN: make(chan struct{}, asyncBatches)}
	if p.alloc == nil {
		p.alloc = DefaultAllocator()
	}
	p.layers = make([]*layerState, len(cfg.Layers))
	ok := false
	defer func() {
		if !ok {
			p.release()
		}
	}()
	for i, spec := range cfg.Layers {
		if len(spec.Experts) == 0 {
			continue
		}
		newLayout := NewLayerLayout
		if cfg.DirectIO {
			newLayout = NewDirectLayout
		}
		layout, err := newLayout(i, spec)
		if err != nil {
			return nil, err
		}
		ls, err := p.newLayer(i, spec, layout)
		if err != nil {
			return nil, err
		}
		p.layers[i] = ls
		for _, parts := range spec.Experts {
			for _, x := range parts {
				if p.files[x.File] != nil {
					continue
				}
				f, err := openModelFile(x.File, cfg.DirectIO)
				if err != nil {
					return nil, err
				}
				p.files[x.File] = f
			}
		}
	}
	for i, ls := range p.layers {
		if ls == nil {
			continue
		}
		for e, parts := range ls.spec.Experts {
			for j, x := range parts {
				if size := p.files[x.File].size; x.Offset+x.Length > size {
					return nil, fmt.Errorf("experts: layer %d expert %d part %d: bytes %d..%d lie beyond the end of %s (%d bytes)", i, e, j, x.Offset, x.Offset+x.Length, x.File, size)
				}
			}
		}
	}
	p.io = newIOPool(cfg.IOWorkers, cfg.ReadAt)
	ok = true
	return p, nil
}

func (p *Pager) newLayer(i int, spec LayerSpec, layout LayerLayout) (*layerState, error) {
	n := len(spec.Experts)
	capacity := min(p.cfg.Capacity, n)
	ls := &layerState{index: i, spec: spec, layout: layout, inflight: map[int32]*load{},
		owner: make([]int32, capacity), state: make([]uint8, capacity),
		pinned: make([]bool, n), freq: make([]float64, n), last: make([]int64, n), cur: make([]int64, n), pref: make([]int64, n),
		inc: 1, growth: math.Exp2(1 / p.cfg.HalfLife)}
	var err error
	if ls.pool, err = p.alloc.Alloc(i, SlotPool, int64(capacity)*layout.SlotStride); err != nil {
		return nil, err
	}
	if ls.tableBuf, err = p.alloc.Alloc(i, SlotTable, int64(4*n)); err != nil {
		p.alloc.Free(ls.pool)
		return nil, err
	}
	if len(ls.tableBuf) < 4*n || uintptr(unsafe.Pointer(&ls.tableBuf[0]))%4 != 0 {
		return nil, fmt.Errorf("experts: layer %d: allocator returned a slot table of %d bytes, want %d aligned to 4", i, len(ls.tableBuf), 4*n)
	}
	ls.table = unsafe.Slice((*int32)(unsafe.Pointer(&ls.tableBuf[0])), n)
	for e := range ls.table {
		ls.table[e] = -1
	}
	for s := range ls.owner {
		ls.owner[s] = -1
	}
	for e := range ls.cur {
		ls.cur[e] = -1 // no call has routed anything yet
		ls.pref[e] = -1
	}
	ls.stats = LayerStats{Layer: i, Experts: n, Capacity: capacity}
	return ls, nil
}

// Close waits for background loads, stops the IO workers and frees the
// slots. Call it after the last Resolve has returned and no kernel reads
// the slots any more.
func (p *Pager) Close() error {
	p.life.Lock()
	if p.closed {
		p.life.Unlock()
		return nil
	}
	p.closed = true
	p.life.Unlock()
	p.async.Wait()
	p.io.close()
	return p.release()
}

func (p *Pager) release() error {
	var errs []error
	for _, ls := range p.layers {
		if ls == nil {
			continue
		}
		if ls.pool != nil {
			errs = append(errs, p.alloc.Free(ls.pool))
		}
		if ls.tableBuf != nil {
			errs = append(errs, p.alloc.Free(ls.tableBuf))
		}
		ls.pool, ls.tableBuf, ls.table = nil, nil, nil
	}
	for _, f := range p.files {
		f.close()
	}
	return errors.Join(errs...)
}

func (p *Pager) layer(i int) (*layerState, error) {
	if i < 0 || i >= len(p.layers) || p.layers[i] == nil {
		return nil, fmt.Errorf("experts: layer %d has no paged experts", i)
	}
	return p.layers[i], nil
}

// Policy returns the miss policy the pager was made with.
func (p *Pager) Policy() Policy { return p.cfg.Policy }

// HasLayer reports whether decoder layer i has paged experts.
func (p *Pager) HasLayer(i int) bool { return i >= 0 && i < len(p.layers) && p.layers[i] != nil }

// Capacity returns the number of slots of layer i (0 if it has no experts).
func (p *Pager) Capacity(i int) int {
	if !p.HasLayer(i) {
		return 0
	}
	return len(p.layers[i].owner)
}

// Layout returns the slot layout of layer i.
func (p *Pager) Layout(i int) LayerLayout {
	if !p.HasLayer(i) {
		return LayerLayout{}
	}
	return p.layers[i].layout
}

// Pool returns the slot memory of layer i: Capacity(i) slots of
// Layout(i).SlotStride bytes.
func (p *Pager) Pool(i int) []byte {
	if !p.HasLayer(i) {
		return nil
	}
	return p.layers[i].pool
}

// Slot returns the bytes of slot s of layer i (Layout(i).SlotBytes long).
func (p *Pager) Slot(i, s int) []byte {
	if !p.HasLayer(i) || s < 0 || s >= p.Capacity(i) {
		return nil
	}
	l := p.layers[i].layout
	return p.layers[i].pool[int64(s)*l.SlotStride:][:l.SlotBytes]
}

// Table returns layer i's live expert -> slot table (-1 = not resident), in
// the memory the allocator gave, for kernels that read it in place (Metal).
// The pager writes it under its lock; the entries of the experts routed by
// the latest Resolve of the layer do not change until the next Resolve of
// that layer. Go code should use the slots Resolve returns instead.
func (p *Pager) Table(i int) []int32 {
	if !p.HasLayer(i) {
		return nil
	}
	return p.layers[i].table
}

// Resolve makes the experts routed by one forward step of layer l usable and
// writes in slots[i] the slot holding ids[i] (slots must be at least as long
// as ids; ids may repeat, e.g. the routes of every token of a prompt).
//
// Exact policy: every id is resident on return; the misses are read in
// parallel. Fast policy: Resolve never waits for a read; slots[i] is -1 for
// an expert that is not resident (the engine drops it and renormalises the
// remaining weights) and the missing experts are loaded in the background.
//
// The experts of this call are never evicted until the next Resolve of the
// same layer, so the engine may read their slots until then. On a read error
// Resolve returns it (naming file and offset); the slot stays free and a
// later call tries again.
func (p *Pager) Resolve(l int, ids []int32, slots []int32) error {
	pend, err := p.Begin(l, ids, slots)
	if err != nil {
		return err
	}
	return pend.Done()
}

// Pending is a Resolve whose misses are still loading (see Begin).
type Pending struct {
	p      *Pager
	ls     *layerState
	ids    []int32
	slots  []int32
	loads  map[int32]*load // the routed experts not resident at Begin
	waited time.Duration   // time spent blocked in Wait
	done   bool
	err    error
}

// resolved is the Pending of a Begin with nothing to wait for; it is never
// changed, so every such Begin shares it and a decode step whose experts
// all hit allocates nothing.
var resolved = &Pending{done: true}

// Begin is Resolve in two steps, so that the engine can run a layer's
// resident experts while its misses load: it returns once the misses'
// reads are queued, with slots[i] the slot that holds or will hold ids[i].
// Under the exact policy an expert whose load has not finished may be used
// only after Wait(id) returned nil; Done waits for all of them and must be
// called before the next Begin or Resolve of the layer (until then the
// layer's other calls, and Close, wait). Under the fast policy Begin is
// Resolve: nothing is pending.
func (p *Pager) Begin(l int, ids []int32, slots []int32) (*Pending, error) {
	ls, err := p.layer(l)
	if err != nil {
		return nil, err
	}
	if len(slots) < len(ids) {
		return nil, fmt.Errorf("experts: layer %d: %d slots for %d ids", l, len(slots), len(ids))
	}
	p.life.RLock()
	if p.closed {
		p.life.RUnlock()
		return nil, errors.New("experts: pager closed")
	}
	n := int32(len(ls.table))
	for _, e := range ids {
		if e < 0 || e >= n {
			p.life.RUnlock()
			return nil, fmt.Errorf("experts: layer %d: expert id %d out of range [0, %d)", l, e, n)
		}
	}
	ls.resolveMu.Lock()
	pend, err := p.begin(ls, ids, slots)
	if err != nil || pend.done {
		ls.resolveMu.Unlock()
		p.life.RUnlock()
	}
	return pend, err
}

// begin does the work of Begin with the locks taken; a Pending that is
// already done needs no Done.
func (p *Pager) begin(ls *layerState, ids, slots []int32) (*Pending, error) {
	l := ls.index
	ls.mu.Lock()
	ls.tick++
	ls.inc *= ls.growth
	if ls.inc > 1e100 {
		for e := range ls.freq {
			ls.freq[e] /= ls.inc
		}
		ls.inc = 1
	}
	// Mark the whole call first, so that no miss evicts another expert of it.
	distinct := ls.distinct[:0]
	defer func() { ls.distinct = distinct[:0] }()
	for _, e := range ids {
		if ls.cur[e] == ls.tick {
			continue
		}
		if ls.cur[e] == ls.tick-1 {
			ls.stats.Repeats++
		}
		if ls.pref[e] == ls.tick-1 {
			ls.stats.PrefetchHits++
			if ls.table[e] < 0 {
				ls.stats.PrefetchLate++
			}
		}
		ls.cur[e] = ls.tick
		ls.freq[e] += ls.inc
		ls.last[e] = ls.tick
		distinct = append(distinct, e)
		if ls.table[e] >= 0 {
			ls.stats.Hits++
		} else {
			ls.stats.Misses++
		}
	}

	var mine, waits []*load
	var missing []int32
	var blocked time.Duration // waiting for background loads of our experts
	for i := 0; i < len(distinct); {
		e := distinct[i]
		switch {
		case ls.table[e] >= 0:
		case ls.inflight[e] != nil && p.cfg.Policy == Exact:
			// A background load (the layer's own calls hold resolveMu): wait
			// for it and look again, so that a failed prefetch becomes a
			// read of our own rather than this call's error.
			w := ls.inflight[e]
			ls.mu.Unlock()
			start := time.Now()
			<-w.done
			blocked += time.Since(start)
			ls.mu.Lock()
			continue
		case ls.inflight[e] != nil:
			waits = append(waits, ls.inflight[e])
		case p.cfg.Policy == Fast:
			missing = append(missing, e)
		default:
			if ld := ls.claim(e, true); ld != nil {
				mine = append(mine, ld)
				break
			}
			// Every evictable slot is busy with a background load: wait for
			// one to finish and look again.
			if w := ls.otherLoad(mine); w != nil {
				ls.mu.Unlock()
				<-w.done
				ls.mu.Lock()
				continue
			}
			ls.abandon(mine, fmt.Errorf("experts: layer %d: capacity exceeded", l))
			ls.mu.Unlock()
			return nil, fmt.Errorf("experts: layer %d: %d distinct experts routed in one call, but only %d of %d slots can take them (%d pinned); pass fewer tokens per call or raise the capacity",
				l, len(distinct), len(ls.owner)-ls.pinnedCount(), len(ls.owner), ls.pinnedCount())
		}
		i++
	}
	ls.stats.IOWait += blocked
	if p.cfg.Policy == Fast || len(mine)+len(waits) == 0 {
		// Nothing to wait for: under the fast policy a miss is dropped
		// (and loaded for later), under exact every expert was resident.
		if len(waits)+len(missing) > 0 {
			ls.stats.Dropped += int64(len(waits) + len(missing))
		}
		p.startAsync(ls, missing, false)
		for i, e := range ids {
			slots[i] = ls.table[e]
		}
		ls.mu.Unlock()
		return resolved, nil
	}
	pend := &Pending{p: p, ls: ls, ids: ids, slots: slots}
	pend.loads = make(map[int32]*load, len(mine)+len(waits))
	for _, ld := range slices.Concat(mine, waits) {
		pend.loads[ld.expert] = ld
	}
	for i, e := range ids {
		if ld := pend.loads[e]; ld != nil {
			slots[i] = ld.slot
		} else {
			slots[i] = ls.table[e]
		}
	}
	ls.mu.Unlock()
	if len(mine) > 0 {
		p.async.Go(func() {
			p.read(ls, mine, p.io.hi)
			ls.finish(mine)
		})
	}
	pend.done = len(pend.loads) == 0
	return pend, nil
}

// Wait blocks until expert e of the Begin is resident (at once for one that
// was) and returns its load's error.
func (pd *Pending) Wait(e int32) error {
	ld := pd.loads[e]
	if ld == nil {
		return nil
	}
	select {
	case <-ld.done:
	default:
		start := time.Now()
		<-ld.done
		pd.waited += time.Since(start)
	}
	return ld.err
}

// Done waits for every load of the Begin, releases the layer for its next
// call and returns the loads' errors (each naming file and offset). It may
// be called more than once.
func (pd *Pending) Done() error {
	if pd.done {
		return pd.err
	}
	var errs []error
	for _, e := range pd.ids {
		if ld := pd.loads[e]; ld != nil {
			if err := pd.Wait(e); err != nil && !slices.Contains(errs, err) {
				errs = append(errs, err)
			}
		}
	}
	ls := pd.ls
	ls.mu.Lock()
	if len(pd.loads) > 0 {
		ls.stats.IOWait += pd.waited
	}
	if len(errs) == 0 {
		for i, e := range pd.ids {
			if ls.table[e] != pd.slots[i] {
				errs = append(errs, fmt.Errorf("experts: layer %d: expert %d is not in slot %d after loading (pager bug)", ls.index, e, pd.slots[i]))
				break
			}
		}
	}
	ls.mu.Unlock()
	pd.done, pd.err = true, errors.Join(errs...)
	ls.resolveMu.Unlock()
	pd.p.life.RUnlock()
	return pd.err
}

// Prefetch starts loading the given experts of layer l without waiting, for
// an engine that predicts the next layer's routes. It never evicts pinned
// experts or those of the latest Resolve, and drops the request when the
// background queue is full.
func (p *Pager) Prefetch(l int, ids []int32) {
	ls, err := p.layer(l)
	if err != nil {
		return
	}
	p.life.RLock()
	defer p.life.RUnlock()
	if p.closed {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var want []int32
	for _, e := range ids {
		if e >= 0 && int(e) < len(ls.table) && ls.table[e] < 0 && ls.inflight[e] == nil && !slices.Contains(want, e) {
			want = append(want, e)
		}
	}
	p.startAsync(ls, want, true)
}

// startAsync claims slots for es and loads them in the background. ls.mu is
// held by the caller (and by the caller of Close's RLock).
func (p *Pager) startAsync(ls *layerState, es []int32, prefetch bool) {
	if len(es) == 0 {
		return
	}
	select {
	case p.asyncN <- struct{}{}:
	default:
		ls.stats.AsyncDropped += int64(len(es))
		return
	}
	var loads []*load
	for _, e := range es {
		ld := ls.claim(e, true)
		if ld == nil {
			ls.stats.AsyncDropped += int64(len(es) - len(loads))
			break
		}
		loads = append(loads, ld)
	}
	if len(loads) == 0 {
		<-p.asyncN
		return
	}
	if prefetch {
		ls.stats.Prefetched += int64(len(loads))
		for _, ld := range loads {
			ls.pref[ld.expert] = ls.tick
		}
	}
	p.async.Go(func() {
		p.read(ls, loads, p.io.lo)
		ls.finish(loads)
		<-p.asyncN
	})
}

// Fill loads experts of layer l into free slots in the given order (most
// wanted first) until the slots run out, without evicting anything, and
// returns how many of ids are resident afterwards. Use it at start to load a
// profile's most used experts or a warm start's resident set.
func (p *Pager) Fill(l int, ids []int32) (int, error) {
	return p.loadNow(l, ids, false)
}

// Pin loads the given experts of layer l (evicting unpinned ones if needed)
// and marks them never to be evicted. At least one slot stays unpinned.
func (p *Pager) Pin(l int, ids []int32) error {
	ls, err := p.layer(l)
	if err != nil {
		return err
	}
	ls.mu.Lock()
	pinned := ls.pinnedCount()
	for _, e := range ids {
		if e >= 0 && int(e) < len(ls.pinned) && !ls.pinned[e] {
			pinned++
		}
	}
	ls.mu.Unlock()
	if pinned >= len(ls.owner) {
		return fmt.Errorf("experts: layer %d: pinning %d experts leaves none of the %d slots for routed experts", l, pinned, len(ls.owner))
	}
	if _, err := p.loadNow(l, ids, true); err != nil {
		return err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, e := range ids {
		if ls.table[e] < 0 {
			return fmt.Errorf("experts: layer %d: expert %d could not be pinned (no slot)", l, e)
		}
		if !ls.pinned[e] {
			ls.pinned[e] = true
			ls.stats.Pinned++
		}
	}
	return nil
}

func (p *Pager) loadNow(l int, ids []int32, evict bool) (int, error) {
	ls, err := p.layer(l)
	if err != nil {
		return 0, err
	}
	p.life.RLock()
	defer p.life.RUnlock()
	if p.closed {
		return 0, errors.New("experts: pager closed")
	}
	for _, e := range ids {
		if e < 0 || int(e) >= len(ls.table) {
			return 0, fmt.Errorf("experts: layer %d: expert id %d out of range [0, %d)", l, e, len(ls.table))
		}
	}
	ls.resolveMu.Lock()
	defer ls.resolveMu.Unlock()
	ls.mu.Lock()
	var mine, waits []*load
	for i, e := range ids {
		switch {
		case ls.table[e] >= 0:
		case ls.inflight[e] != nil:
			waits = append(waits, ls.inflight[e])
		default:
			ld := ls.claim(e, evict)
			if ld == nil {
				continue
			}
			// A prior worth less than one use, in the order given, so the
			// routes of real requests soon decide.
			ls.freq[e] = ls.inc * 0.5 * float64(len(ids)-i) / float64(len(ids))
			mine = append(mine, ld)
		}
	}
	ls.mu.Unlock()
	err = p.complete(ls, mine, waits)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := 0
	for _, e := range ids {
		if ls.table[e] >= 0 {
			n++
		}
	}
	return n, err
}

// complete reads the loads this caller claimed (at the waited-for
// priority), waits for the loads of others it depends on, and joins their
// errors. The layer's lock must not be held.
func (p *Pager) complete(ls *layerState, mine, waits []*load) error {
	if len(mine) > 0 {
		p.read(ls, mine, p.io.hi)
		ls.finish(mine)
	}
	for _, w := range waits {
		<-w.done
	}
	var errs []error
	for _, ld := range slices.Concat(mine, waits) {
		if ld.err != nil {
			errs = append(errs, ld.err)
		}
	}
	return errors.Join(errs...)
}

// Resident returns the experts resident in layer l, most valuable first
// (pinned, then by decayed use), as a warm start records them.
func (p *Pager) Resident(l int) []int32 {
	ls, err := p.layer(l)
	if err != nil {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []int32
	for s, e := range ls.owner {
		if e >= 0 && ls.state[s] == slotResident {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ls.pinned[a] != ls.pinned[b] {
			return ls.pinned[a]
		}
		if ls.freq[a] != ls.freq[b] {
			return ls.freq[a] > ls.freq[b]
		}
		return ls.last[a] > ls.last[b]
	})
	return out
}

// Pinned returns the pinned experts of layer l.
func (p *Pager) Pinned(l int) []int32 {
	ls, err := p.layer(l)
	if err != nil {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []int32
	for e, ok := range ls.pinned {
		if ok {
			out = append(out, int32(e))
		}
	}
	return out
}

// CheckFiles reports model files that changed on disk (size or modification
// time) since the pager opened them; a server may call it periodically. Read
// errors also say when a file changed.
func (p *Pager) CheckFiles() error {
	var errs []error
	for _, name := range p.fileNames() {
		if msg := p.files[name].changed(); msg != "" {
			errs = append(errs, errors.New("experts: "+msg))
		}
	}
	return errors.Join(errs...)
}

func (p *Pager) fileNames() []string {
	names := make([]string, 0, len(p.files))
	for n := range p.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// read loads the experts into their claimed slots through the IO pool and
// waits. Each load's err is set if any of its reads failed.
func (p *Pager) read(ls *layerState, loads []*load, queue chan *ioRun) {
	var ps []piece
	var names []string
	for _, ld := range loads {
		base := int64(ld.slot) * ls.layout.SlotStride
		for i, x := range ls.spec.Experts[ld.expert] {
			at := base + ls.layout.PartOffsets[i]
			pc := piece{off: x.Offset, dst: ls.pool[at : at+x.Length : at+x.Length], ld: ld}
			if head := x.Offset % SlotAlign; ls.layout.InPlace(i) && int64(uintptr(unsafe.Pointer(&ls.pool[at]))%SlotAlign) == head {
				lo, hi := at-head, alignUp(at+x.Length, SlotAlign)
				pc.cover = ls.pool[lo:hi:hi]
			}
			ps = append(ps, pc)
			names = append(names, x.File)
		}
	}
	runs := planRuns(p.files, ps, names)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(len(runs))
	start := time.Now()
	done := func(r *ioRun, err error) {
		if err != nil {
			if msg := r.file.changed(); msg != "" {
				err = fmt.Errorf("%w; %s", err, msg)
			}
			mu.Lock()
			for _, pc := range r.pieces {
				if pc.ld.err == nil {
					pc.ld.err = fmt.Errorf("experts: layer %d expert %d: %w", ls.index, pc.ld.expert, err)
				}
			}
			mu.Unlock()
		}
		wg.Done()
	}
	for _, r := range runs {
		if p.cfg.ReadAhead && r.file.direct.Load() == nil {
			adviseRead(r.file.f, r.off, r.n)
		}
	}
	for _, r := range runs {
		r.done = done
		queue <- r
	}
	wg.Wait()
	ls.mu.Lock()
	ls.stats.ReadTime += time.Since(start)
	ls.mu.Unlock()
}

// claim picks a slot for expert e and marks it loading: a free slot, else
// (if evict) the resident expert with the lowest decayed use that is neither
// pinned nor routed by the latest Resolve. It returns nil if there is none.
func (ls *layerState) claim(e int32, evict bool) *load {
	best := -1
	for s, st := range ls.state {
		if st == slotFree {
			best = s
			break
		}
		if !evict || st != slotResident {
			continue
		}
		o := ls.owner[s]
		if ls.pinned[o] || ls.cur[o] == ls.tick {
			continue
		}
		if best < 0 {
			best = s
			continue
		}
		b := ls.owner[best]
		if ls.freq[o] < ls.freq[b] || (ls.freq[o] == ls.freq[b] && ls.last[o] < ls.last[b]) {
			best = s
		}
	}
	if best < 0 {
		return nil
	}
	if old := ls.owner[best]; old >= 0 {
		ls.table[old] = -1
		ls.stats.Evictions++
	}
	ls.owner[best] = e
	ls.state[best] = slotLoading
	ld := &load{expert: e, slot: int32(best), done: make(chan struct{})}
	ls.inflight[e] = ld
	return ld
}

// finish publishes finished loads: a loaded expert enters the table, a
// failed one leaves its slot free.
func (ls *layerState) finish(loads []*load) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, ld := range loads {
		delete(ls.inflight, ld.expert)
		if ld.err == nil {
			ls.table[ld.expert] = ld.slot
			ls.state[ld.slot] = slotResident
			ls.stats.Loads++
			ls.stats.Bytes += ls.layout.SlotBytes
		} else {
			ls.owner[ld.slot] = -1
			ls.state[ld.slot] = slotFree
			ls.stats.Failed++
		}
		close(ld.done)
	}
}

// abandon releases claimed slots that will not be read.
func (ls *layerState) abandon(loads []*load, err error) {
	for _, ld := range loads {
		ld.err = err
		delete(ls.inflight, ld.expert)
		ls.owner[ld.slot] = -1
		ls.state[ld.slot] = slotFree
		close(ld.done)
	}
}

// otherLoad returns an in-flight load not in mine, if any.
func (ls *layerState) otherLoad(mine []*load) *load {
	for _, ld := range ls.inflight {
		if !slices.Contains(mine, ld) {
			return ld
		}
	}
	return nil
}

func (ls *layerState) pinnedCount() int {
	return int(ls.stats.Pinned)
}
