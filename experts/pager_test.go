package experts

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// testModel is a file laid out like an MLX checkpoint: per layer, per part,
// one stacked tensor of all experts' slices. Every byte says which layer,
// expert, part and position it belongs to.
type testModel struct {
	path   string
	layers []LayerSpec
	parts  []int64
}

func expertByte(l, e, p, i int) byte {
	return byte(l*31 + e*7 + p*13 + i*3 + i>>8)
}

func writeTestModel(t testing.TB, dir string, layers, experts int, parts []int64) *testModel {
	t.Helper()
	return writeTestModelAt(t, dir, layers, experts, parts, 8+77) // a header of awkward length, like a real file
}

// writeTestModelAt is writeTestModel with the tensors starting header bytes
// into the file.
func writeTestModelAt(t testing.TB, dir string, layers, experts int, parts []int64, header int) *testModel {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	var buf bytes.Buffer
	buf.Write(make([]byte, header))
	m := &testModel{path: path, parts: parts}
	for l := range layers {
		spec := LayerSpec{Experts: make([][]Extent, experts)}
		for p, n := range parts {
			for e := range experts {
				spec.Experts[e] = append(spec.Experts[e], Extent{File: path, Offset: int64(buf.Len()), Length: n})
				for i := range int(n) {
					buf.WriteByte(expertByte(l, e, p, i))
				}
			}
		}
		m.layers = append(m.layers, spec)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkSlot verifies that slot s of layer l holds expert e.
func checkSlot(t testing.TB, p *Pager, l int, s int32, e int32) {
	t.Helper()
	lay := p.Layout(l)
	slot := p.Slot(l, int(s))
	for part, off := range lay.PartOffsets {
		got := slot[off : off+lay.PartLengths[part]]
		for i, b := range got {
			if want := expertByte(l, int(e), part, i); b != want {
				t.Fatalf("layer %d slot %d (expert %d) part %d byte %d = %d, want %d", l, s, e, part, i, b, want)
			}
		}
	}
}

// checkConsistent verifies that the table and the slot owners agree.
func checkConsistent(t testing.TB, p *Pager, l int) {
	t.Helper()
	ls := p.layers[l]
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for e, s := range ls.table {
		if s >= 0 && (ls.owner[s] != int32(e) || ls.state[s] != slotResident) {
			t.Fatalf("layer %d: table[%d] = %d but slot %d holds %d (state %d)", l, e, s, s, ls.owner[s], ls.state[s])
		}
	}
	for s, e := range ls.owner {
		if ls.state[s] == slotResident && ls.table[e] != int32(s) {
			t.Fatalf("layer %d: slot %d resident with %d but table says %d", l, s, e, ls.table[e])
		}
	}
}

var testParts = []int64{1000, 24, 4103}

func newTestPager(t testing.TB, m *testModel, capacity int, mod func(*Config)) *Pager {
	t.Helper()
	cfg := Config{Layers: m.layers, Capacity: capacity, IOWorkers: 3}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestLayout(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 2, testParts)
	l, err := NewLayerLayout(0, m.layers[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{0, 1024, 1088}
	for i, off := range l.PartOffsets {
		if off != want[i] {
			t.Errorf("part %d offset %d, want %d", i, off, want[i])
		}
	}
	if l.SlotBytes != 1088+4103 || l.SlotStride != 8192 {
		t.Errorf("slot bytes %d stride %d, want %d and 8192", l.SlotBytes, l.SlotStride, 1088+4103)
	}
	bad := LayerSpec{Experts: [][]Extent{m.layers[0].Experts[0], m.layers[0].Experts[1][:2]}}
	if _, err := NewLayerLayout(3, bad); err == nil || !strings.Contains(err.Error(), "layer 3 expert 1: 2 parts") {
		t.Errorf("mismatched parts: err = %v", err)
	}
}

func TestResolveExact(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 2, 16, testParts)
	p := newTestPager(t, m, 4, nil)
	slots := make([]int32, 8)
	calls := [][]int32{{3, 5}, {5, 3, 3, 5}, {7, 9, 11, 3}, {0, 1}, {15, 14, 13, 12}}
	for _, l := range []int{0, 1} {
		for _, ids := range calls {
			if err := p.Resolve(l, ids, slots); err != nil {
				t.Fatal(err)
			}
			for i, e := range ids {
				checkSlot(t, p, l, slots[i], e)
			}
			checkConsistent(t, p, l)
		}
	}
	st := p.Stats()
	// distinct ids per call: 2,2,4,2,4 = 14; hits: {5,3} on call 2 and 3 on call 3.
	if st.Layers[0].Hits != 3 || st.Layers[0].Misses != 11 || st.Layers[0].Loads != 11 {
		t.Errorf("layer 0 stats %+v, want 3 hits, 11 misses, 11 loads", st.Layers[0])
	}
	if st.Total.Bytes != 22*(1088+4103) || st.Total.Evictions != 2*(11-4) {
		t.Errorf("total bytes %d evictions %d", st.Total.Bytes, st.Total.Evictions)
	}
	// The mean depth is busy-time weighted: about 1 for serial misses, a
	// little under it when timing is coarse (as under -race).
	if st.InFlight <= 0 || st.MaxInFlight < 1 || st.Total.IOWait <= 0 || st.IOBusy <= 0 {
		t.Errorf("IO counters after misses: %.2f reads in flight on average, at most %d, IO wait %v, busy %v", st.InFlight, st.MaxInFlight, st.Total.IOWait, st.IOBusy)
	}
	if !strings.Contains(st.String(), "total") {
		t.Errorf("stats table lacks totals:\n%s", st)
	}
	if err := p.Resolve(0, []int32{16}, slots); err == nil {
		t.Error("out-of-range id accepted")
	}
	if err := p.Resolve(2, []int32{1}, slots); err == nil {
		t.Error("layer without experts accepted")
	}
}

// TestBegin: Begin hands out the slots at once, Wait makes one expert
// usable, Done the rest; the layer's next call waits for Done.
func TestBegin(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 16, testParts)
	p := newTestPager(t, m, 6, nil)
	slots := make([]int32, 3)
	if err := p.Resolve(0, []int32{1}, slots); err != nil {
		t.Fatal(err)
	}
	ids := []int32{1, 7, 9}
	pend, err := p.Begin(0, ids, slots)
	if err != nil {
		t.Fatal(err)
	}
	if slots[0] != p.Table(0)[1] || slots[1] < 0 || slots[2] < 0 || slots[1] == slots[2] {
		t.Fatalf("slots %v at Begin", slots)
	}
	checkSlot(t, p, 0, slots[0], 1) // a hit is usable at once
	if err := pend.Wait(9); err != nil {
		t.Fatal(err)
	}
	checkSlot(t, p, 0, slots[2], 9)
	next := make(chan error)
	go func() { next <- p.Resolve(0, []int32{3}, make([]int32, 1)) }()
	select {
	case err := <-next:
		t.Fatalf("the next Resolve ran before Done: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := pend.Done(); err != nil {
		t.Fatal(err)
	}
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	checkSlot(t, p, 0, slots[1], 7)
	if err := pend.Done(); err != nil {
		t.Errorf("second Done: %v", err)
	}
	checkConsistent(t, p, 0)
}

func TestEviction(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 32, testParts)
	p := newTestPager(t, m, 4, nil)
	slots := make([]int32, 4)
	if err := p.Pin(0, []int32{31}); err != nil {
		t.Fatal(err)
	}
	// Expert 1 is used on every call, 2 on every other; the rest once each.
	for i := range 40 {
		ids := []int32{1, int32(3 + i%28)}
		if i%2 == 0 {
			ids = append(ids, 2)
		}
		if err := p.Resolve(0, ids, slots); err != nil {
			t.Fatal(err)
		}
		res := p.Resident(0)
		for _, want := range []int32{31, 1} {
			if !containsID(res, want) {
				t.Fatalf("call %d: expert %d evicted; resident %v", i, want, res)
			}
		}
		if i > 0 && !containsID(res, 2) {
			t.Fatalf("call %d: frequent expert 2 evicted before one-off experts; resident %v", i, res)
		}
	}
	if res := p.Resident(0); res[0] != 31 || res[1] != 1 {
		t.Errorf("resident order %v, want pinned 31 then hottest 1 first", res)
	}
	// A call may use every unpinned slot: none of its experts is evicted by
	// another of its misses.
	if err := p.Resolve(0, []int32{20, 21, 22}, slots); err != nil {
		t.Fatal(err)
	}
	for i, e := range []int32{20, 21, 22} {
		checkSlot(t, p, 0, slots[i], e)
	}
	err := p.Resolve(0, []int32{4, 5, 6, 7}, slots)
	if err == nil || !strings.Contains(err.Error(), "4 distinct experts") {
		t.Fatalf("over capacity: err = %v", err)
	}
	checkConsistent(t, p, 0)
	if err := p.Resolve(0, []int32{4, 5, 6}, slots); err != nil {
		t.Fatalf("after a capacity error: %v", err)
	}
	if err := p.Pin(0, []int32{1, 2, 3}); err == nil {
		t.Error("pinning every slot accepted")
	}
}

func containsID(s []int32, e int32) bool {
	for _, x := range s {
		if x == e {
			return true
		}
	}
	return false
}

func TestFastPolicy(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 16, testParts)
	p := newTestPager(t, m, 4, func(c *Config) { c.Policy = Fast })
	slots := make([]int32, 2)
	if err := p.Resolve(0, []int32{2, 6}, slots); err != nil {
		t.Fatal(err)
	}
	if slots[0] != -1 || slots[1] != -1 {
		t.Fatalf("cold fast resolve returned slots %v, want misses", slots)
	}
	p.async.Wait()
	if err := p.Resolve(0, []int32{6, 2}, slots); err != nil {
		t.Fatal(err)
	}
	checkSlot(t, p, 0, slots[0], 6)
	checkSlot(t, p, 0, slots[1], 2)
	st := p.Stats().Total
	if st.Hits != 2 || st.Misses != 2 || st.Dropped != 2 || st.Loads != 2 {
		t.Errorf("stats %+v, want 2 hits, 2 misses, 2 dropped, 2 loads", st)
	}
}

func TestPrefetchAndFill(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 16, testParts)
	p := newTestPager(t, m, 4, nil)
	n, err := p.Fill(0, []int32{9, 8, 7, 6, 5, 4})
	if err != nil || n != 4 {
		t.Fatalf("Fill = %d, %v; want 4 resident", n, err)
	}
	if res := p.Resident(0); fmt.Sprint(res) != "[9 8 7 6]" {
		t.Errorf("after fill resident %v, want [9 8 7 6] in profile order", res)
	}
	slots := make([]int32, 2)
	if err := p.Resolve(0, []int32{9, 8}, slots); err != nil {
		t.Fatal(err)
	}
	p.Prefetch(0, []int32{1, 2, 3})
	p.async.Wait()
	st := p.Stats().Total
	if st.Prefetched != 2 || st.AsyncDropped != 1 {
		t.Errorf("prefetch into 2 evictable slots: prefetched %d dropped %d, want 2 and 1", st.Prefetched, st.AsyncDropped)
	}
	if err := p.Resolve(0, []int32{1, 2}, slots); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats().Total; st.Hits != 4 || st.PrefetchHits != 2 || st.PrefetchPrecision() != 1 || st.PrefetchRecall() != 1 {
		t.Errorf("after prefetch: hits %d, prefetch hits %d, precision %.2f, recall %.2f; want 4, 2, 1, 1", st.Hits, st.PrefetchHits, st.PrefetchPrecision(), st.PrefetchRecall())
	}
	checkSlot(t, p, 0, slots[0], 1)
	// Expert 2 again, 5 never predicted: recall 2 of 3, one repeat.
	if err := p.Resolve(0, []int32{2, 5}, slots); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats().Total; st.Repeats != 1 || st.PrefetchRecall() != 2.0/3 {
		t.Errorf("repeats %d, recall %.3f; want 1 and 2/3", st.Repeats, st.PrefetchRecall())
	}
	before := p.Stats().Total
	if err := p.Resolve(0, []int32{5}, slots); err != nil {
		t.Fatal(err)
	}
	if d := p.Stats().Total.Since(before); d.Hits != 1 || d.Misses != 0 || d.Repeats != 1 || d.Capacity != 4 {
		t.Errorf("one more hit: since %+v", d)
	}
}

// faultyReads fails reads of the model file that touch byte `at`, once per arm().
type faultyReads struct {
	at    int64
	err   error // returned with no bytes; nil means a short read
	armed atomic.Bool
	hits  atomic.Int32
}

func (f *faultyReads) readAt(file *os.File, b []byte, off int64) (int, error) {
	if off <= f.at && f.at < off+int64(len(b)) && f.armed.CompareAndSwap(true, false) {
		f.hits.Add(1)
		if f.err != nil {
			return 0, f.err
		}
		n, _ := file.ReadAt(b[:f.at-off], off)
		return n, io.EOF // as if the file ended there
	}
	return file.ReadAt(b, off)
}

func TestReadFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		direct bool
		want   string
	}{
		{"EIO", syscall.EIO, false, "input/output error"},
		{"short", nil, false, "short read"},
		{"EIO direct", syscall.EIO, true, "input/output error"},
		{"EIO in place", syscall.EIO, true, "input/output error"},
		{"short in place", nil, true, "short read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := writeTestModel(t, t.TempDir(), 1, 8, testParts)
			if strings.HasSuffix(tc.name, "in place") {
				m = writeTestModelAt(t, t.TempDir(), 1, 8, []int64{SlotAlign, 24, 2 * SlotAlign}, 8+1000)
			}
			bad := m.layers[0].Experts[5][2]
			f := &faultyReads{at: bad.Offset + bad.Length/2, err: tc.err} // in no other expert's blocks
			p := newTestPager(t, m, 4, func(c *Config) { c.ReadAt = f.readAt; c.DirectIO = tc.direct })
			slots := make([]int32, 3)
			if err := p.Resolve(0, []int32{1, 2}, slots); err != nil {
				t.Fatal(err)
			}
			f.armed.Store(true)
			err := p.Resolve(0, []int32{4, 5, 1}, slots)
			if err == nil || f.hits.Load() != 1 {
				t.Fatalf("injected fault not reported: err %v, hits %d", err, f.hits.Load())
			}
			for _, s := range []string{m.path, "offset", "layer 0 expert 5", tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if p.Table(0)[5] != -1 {
				t.Error("expert 5 marked resident after a failed read")
			}
			checkConsistent(t, p, 0)
			// O_DIRECT merges neighbouring experts into one read, which fails for all.
			if st := p.Stats().Total; st.Failed < 1 {
				t.Errorf("failed loads %d, want at least 1", st.Failed)
			}
			if err := p.Resolve(0, []int32{4, 5, 1}, slots); err != nil {
				t.Fatalf("request after the fault: %v", err)
			}
			for i, e := range []int32{4, 5, 1} {
				checkSlot(t, p, 0, slots[i], e)
			}
		})
	}
}

func TestFileChanged(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 8, testParts)
	f := &faultyReads{at: m.layers[0].Experts[3][0].Offset, err: syscall.EIO}
	p := newTestPager(t, m, 4, func(c *Config) { c.ReadAt = f.readAt })
	if err := p.CheckFiles(); err != nil {
		t.Fatalf("unchanged files: %v", err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(m.path, later, later); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckFiles(); err == nil || !strings.Contains(err.Error(), "changed on disk since start") {
		t.Errorf("CheckFiles after touch: %v", err)
	}
	f.armed.Store(true)
	err := p.Resolve(0, []int32{3}, make([]int32, 1))
	if err == nil || !strings.Contains(err.Error(), "changed on disk since start") {
		t.Errorf("read error does not say the file changed: %v", err)
	}
}

func TestDirectIO(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 2, 8, []int64{5000, 64, 70000})
	p := newTestPager(t, m, 8, func(c *Config) { c.DirectIO = true })
	slots := make([]int32, 8)
	ids := []int32{0, 1, 2, 3, 7, 6, 5, 4}
	for l := range 2 {
		if err := p.Resolve(l, ids, slots); err != nil {
			t.Fatal(err)
		}
		for i, e := range ids {
			checkSlot(t, p, l, slots[i], e)
		}
	}
	st := p.Stats()
	t.Logf("direct IO: %s", st.DirectIO)
	if st.DirectIO != "on" && !strings.Contains(st.DirectIO, "unavailable") {
		t.Errorf("DirectIO = %q", st.DirectIO)
	}
}

// TestReadAhead: the read-ahead advice changes nothing that is read.
func TestReadAhead(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 8, testParts)
	p := newTestPager(t, m, 8, func(c *Config) { c.ReadAhead = true })
	ids := []int32{6, 1, 3, 0}
	slots := make([]int32, len(ids))
	if err := p.Resolve(0, ids, slots); err != nil {
		t.Fatal(err)
	}
	for i, e := range ids {
		checkSlot(t, p, 0, slots[i], e)
	}
}

// TestDirectInPlace checks that O_DIRECT reads go straight into the slots
// for parts whose slices are whole blocks (as in real stacked checkpoints),
// including the last part of the file, whose aligned cover runs past its
// end, and through the bounce buffer for the others.
func TestDirectInPlace(t *testing.T) {
	parts := []int64{3 * SlotAlign, SlotAlign, 1000, 5 * maxRun / 2} // the last split into reads
	m := writeTestModelAt(t, t.TempDir(), 2, 6, parts, 8+1000)
	lay, err := NewDirectLayout(0, m.layers[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false, true} {
		if lay.InPlace(i) != want {
			t.Errorf("part %d in place = %v, want %v", i, lay.InPlace(i), want)
		}
	}
	if off := lay.PartOffsets[0]; off%SlotAlign != (8+1000)%SlotAlign {
		t.Errorf("part 0 at %d in the slot, want the file's remainder %d", off, (8+1000)%SlotAlign)
	}
	// The last layer's last part ends the file; put its parts in place too.
	last := writeTestModelAt(t, t.TempDir(), 1, 3, []int64{SlotAlign, 2 * SlotAlign}, 8+1000)
	for _, m := range []*testModel{m, last} {
		var pool []byte
		var inPlace, total atomic.Int32
		p := newTestPager(t, m, 4, func(c *Config) {
			c.DirectIO = true
			c.ReadAt = func(f *os.File, b []byte, off int64) (int, error) {
				total.Add(1)
				if len(b) > 0 && len(pool) > 0 && inside(pool, b) {
					inPlace.Add(1)
				}
				return f.ReadAt(b, off)
			}
		})
		if p.files[m.path].direct.Load() == nil {
			t.Skip("O_DIRECT not available here")
		}
		slots := make([]int32, 3)
		for l := range m.layers {
			pool = p.Pool(l)
			ids := []int32{2, 0, 1}
			if err := p.Resolve(l, ids, slots); err != nil {
				t.Fatal(err)
			}
			for i, e := range ids {
				checkSlot(t, p, l, slots[i], e)
			}
		}
		// The 1000-byte parts of m need the bounce buffer; the rest do not.
		if want := m == last; inPlace.Load() == 0 || (inPlace.Load() == total.Load()) != want {
			t.Errorf("%d of %d reads went straight into the slots", inPlace.Load(), total.Load())
		}
	}
}

// inside reports whether b lies within pool.
func inside(pool, b []byte) bool {
	lo := uintptr(unsafe.Pointer(&pool[0]))
	at := uintptr(unsafe.Pointer(&b[0]))
	return at >= lo && at+uintptr(len(b)) <= lo+uintptr(len(pool))
}

func TestDirectIOFallback(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 4, testParts)
	var refused atomic.Int32
	p := newTestPager(t, m, 4, func(c *Config) {
		c.DirectIO = true
		c.ReadAt = func(f *os.File, b []byte, off int64) (int, error) {
			if off%SlotAlign == 0 && len(b)%SlotAlign == 0 {
				refused.Add(1)
				return 0, syscall.EINVAL // what a file system without O_DIRECT reads says
			}
			return f.ReadAt(b, off)
		}
	})
	if p.files[m.path].direct.Load() == nil {
		t.Skip("O_DIRECT not available here")
	}
	slots := make([]int32, 4)
	if err := p.Resolve(0, []int32{0, 1, 2, 3}, slots); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		checkSlot(t, p, 0, slots[i], int32(i))
	}
	if refused.Load() == 0 || !strings.Contains(p.Stats().DirectIO, "refused") {
		t.Errorf("fallback not reported: %d refusals, DirectIO %q", refused.Load(), p.Stats().DirectIO)
	}
}

func TestPlanRunsMerges(t *testing.T) {
	m := &modelFile{name: "f"}
	files := map[string]*modelFile{"f": m}
	pool := make([]byte, 100)
	ld1, ld2 := &load{}, &load{}
	ps := []piece{
		{off: 110, dst: pool[10:20], ld: ld1},
		{off: 100, dst: pool[0:10], ld: ld1},
		{off: 120, dst: pool[50:60], ld: ld1}, // adjacent in the file, not in memory
		{off: 130, dst: pool[60:70], ld: ld2}, // another expert
	}
	runs := planRuns(files, ps, []string{"f", "f", "f", "f"})
	if len(runs) != 3 || runs[0].off != 100 || runs[0].n != 20 || len(runs[0].pieces[0].dst) != 20 {
		for _, r := range runs {
			t.Logf("run %d+%d pieces %d", r.off, r.n, len(r.pieces))
		}
		t.Fatalf("buffered runs: got %d, want 3 with the first covering 100..120", len(runs))
	}
}

// TestConcurrent runs Resolve on every layer from its own goroutine while
// other goroutines prefetch at random, and checks every slot Resolve hands
// out. Run with -race.
func TestConcurrent(t *testing.T) {
	const layers, experts = 4, 24
	m := writeTestModel(t, t.TempDir(), layers, experts, testParts)
	for _, policy := range []Policy{Exact, Fast} {
		t.Run(policy.String(), func(t *testing.T) {
			p := newTestPager(t, m, 6, func(c *Config) { c.Policy = policy; c.IOWorkers = 4 })
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for g := range 3 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(g), 9))
					for {
						select {
						case <-stop:
							return
						default:
						}
						p.Prefetch(r.IntN(layers), []int32{int32(r.IntN(experts)), int32(r.IntN(experts))})
						_ = p.Stats()
					}
				})
			}
			var rg sync.WaitGroup
			for l := range layers {
				rg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(l), 1))
					slots := make([]int32, 4)
					for range 200 {
						ids := []int32{int32(r.IntN(experts)), int32(r.IntN(experts)), int32(r.IntN(6)), int32(r.IntN(6))}
						if err := p.Resolve(l, ids, slots); err != nil {
							t.Error(err)
							return
						}
						for i, e := range ids {
							if slots[i] >= 0 {
								checkSlot(t, p, l, slots[i], e)
							} else if policy == Exact {
								t.Errorf("exact policy returned no slot for %d", e)
							}
						}
					}
				})
			}
			rg.Wait()
			close(stop)
			wg.Wait()
			p.async.Wait()
			for l := range layers {
				checkConsistent(t, p, l)
			}
			st := p.Stats().Total
			if st.Hits+st.Misses == 0 || st.Loads == 0 {
				t.Errorf("no work recorded: %+v", st)
			}
		})
	}
}

func TestClose(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 8, testParts)
	p := newTestPager(t, m, 2, nil)
	p.Prefetch(0, []int32{1, 2})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resolve(0, []int32{1}, make([]int32, 1)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Resolve after Close: %v", err)
	}
}

// Before the first Resolve nothing is protected: Pin and Prefetch may evict
// what Fill loaded.
func TestPinAfterFill(t *testing.T) {
	m := writeTestModel(t, t.TempDir(), 1, 8, testParts)
	p := newTestPager(t, m, 3, nil)
	if n, err := p.Fill(0, []int32{0, 1, 2, 3}); n != 3 || err != nil {
		t.Fatalf("Fill = %d, %v", n, err)
	}
	if err := p.Pin(0, []int32{5, 6}); err != nil {
		t.Fatal(err)
	}
	if res := p.Resident(0); len(res) != 3 || res[0] != 5 || res[1] != 6 || res[2] != 0 {
		t.Errorf("resident %v, want pinned 5, 6, then the first filled expert", res)
	}
	if got := p.Pinned(0); len(got) != 2 {
		t.Errorf("pinned %v", got)
	}
}
