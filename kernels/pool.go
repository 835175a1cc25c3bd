package kernels

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool behind parallelFor: GOMAXPROCS-1 goroutines started once,
// so a kernel call costs a handoff rather than a goroutine per core. A call
// is cut into more chunks than workers and every participant (the caller
// included) claims chunks with an atomic counter, so a core that another
// process slows down takes fewer of them. The caller only hands the job to
// workers that are idle at that moment and always works itself, so a
// parallelFor inside a parallelFor body (a kernel called from a parallel
// region) cannot deadlock: it runs on whoever is free, at worst on the
// caller alone.
//
// A decode step is a chain of parallel regions a few microseconds apart
// (norms and the activations' quantization run between them on the
// caller). A worker that parked after each region would miss the next
// one's handoff or take a futex wake-up to reach it, and a caller parked
// in its join the same on the way back, leaving a core idle for a tenth of
// a matvec. So both sides wait for a while by polling, yielding the core to
// any other goroutine between polls, and only then park.

// spinWait is how long an idle worker, or a caller whose workers are still
// busy, polls before it parks.
const spinWait = 200 * time.Microsecond

// poolJob is one parallelFor call. Workers take the caller's
// SetPanicOnFault setting and hand a panic back to the caller, so a fault in
// memory-mapped weights fails the call (see experts.GuardMapped) instead of
// the process.
type poolJob struct {
	body     func(lo, hi int)
	n        int
	chunk    int
	onFault  bool
	next     atomic.Int64
	panicked atomic.Pointer[any]
	// pending counts the workers still running the job, for the caller's
	// polling; joined is what the caller finally waits on, so the job is
	// recycled only after every worker is done touching it.
	pending atomic.Int32
	joined  sync.WaitGroup
}

// run claims and runs chunks until none are left; a panic is kept for the
// caller and stops this participant.
func (j *poolJob) run() {
	defer j.keepPanic()
	for {
		lo := int(j.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.n {
			return
		}
		j.body(lo, min(lo+j.chunk, j.n))
	}
}

// keepPanic keeps a recovered panic for the caller. It is a method, not a
// deferred closure, and boxes the value only when there is one, so a run
// without a panic allocates nothing.
func (j *poolJob) keepPanic() {
	if v := recover(); v != nil {
		p := new(any)
		*p = v
		j.panicked.CompareAndSwap(nil, p)
	}
}

// Worker states: polling for a job, parked on its wake channel, or claimed
// by a caller.
const (
	workerPolling int32 = iota
	workerParked
	workerClaimed
)

type poolWorker struct {
	state atomic.Int32
	job   atomic.Pointer[poolJob]
	wake  chan struct{}
}

var (
	poolStart   sync.Once
	poolWorkers []*poolWorker
	jobPool     freeList[poolJob]
)

func startPool() {
	for i := 1; i < runtime.GOMAXPROCS(0); i++ {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		poolWorkers = append(poolWorkers, w)
		go w.serve()
	}
}

func (w *poolWorker) serve() {
	for {
		j := w.await()
		debug.SetPanicOnFault(j.onFault)
		j.run()
		w.job.Store(nil)
		w.state.Store(workerPolling)
		j.pending.Add(-1)
		j.joined.Done()
	}
}

// await polls for a job for spinWait, then parks until a caller claims the
// worker.
func (w *poolWorker) await() *poolJob {
	start := time.Now()
	for i := 1; ; i++ {
		if j := w.job.Load(); j != nil {
			return j
		}
		if i%16 == 0 && time.Since(start) > spinWait && w.state.CompareAndSwap(workerPolling, workerParked) {
			<-w.wake
			start = time.Now()
			continue
		}
		runtime.Gosched()
	}
}

// claim hands j to w if w is idle.
func (w *poolWorker) claim(j *poolJob) bool {
	parked := false
	if !w.state.CompareAndSwap(workerPolling, workerClaimed) {
		if !w.state.CompareAndSwap(workerParked, workerClaimed) {
			return false
		}
		parked = true
	}
	j.pending.Add(1)
	j.joined.Add(1)
	w.job.Store(j)
	if parked {
		w.wake <- struct{}{}
	}
	return true
}

// chunksPerWorker trades the atomic claim per chunk against load balance.
// Calls with fewer than fineItems items per worker get one chunk per
// worker, the ranges the goroutine-per-chunk form gave: their bodies often
// set up scratch per call (attention's tile buffers, the delta rule's chunk
// buffers), which should not be multiplied.
const (
	chunksPerWorker = 4
	fineItems       = 64
)

// runParallel runs body over [0, n) on the caller and up to workers-1 idle
// pool workers.
func runParallel(n, workers int, body func(lo, hi int)) {
	poolStart.Do(startPool)
	j := jobPool.get()
	j.body, j.n = body, n
	chunks := workers
	if n >= fineItems*workers {
		chunks *= chunksPerWorker
	}
	j.chunk = (n + chunks - 1) / chunks
	j.next.Store(0)
	j.panicked.Store(nil)
	j.onFault = debug.SetPanicOnFault(false)
	debug.SetPanicOnFault(j.onFault)
	helpers := 0
	for _, w := range poolWorkers {
		if helpers == workers-1 {
			break
		}
		if w.claim(j) {
			helpers++
		}
	}
	j.run()
	if j.pending.Load() > 0 {
		start := time.Now()
		for i := 1; j.pending.Load() > 0; i++ {
			if i%16 == 0 && time.Since(start) > spinWait {
				break
			}
			runtime.Gosched()
		}
	}
	j.joined.Wait()
	panicked := j.panicked.Load()
	j.body = nil
	jobPool.put(j)
	if panicked != nil {
		panic(*panicked)
	}
}

// ParallelFor runs body over [0, n) split across the cores, for executors
// that run several kernels (MatVecRows on many matrices) as one parallel
// region. cost is the work per item; small totals run on the caller.
func ParallelFor(n, cost int, body func(lo, hi int)) { parallelFor(n, cost, body) }
