package kernels

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// The worker pool behind parallelFor: GOMAXPROCS-1 goroutines started once
// and parked on a channel, so a kernel call costs a channel handoff rather
// than a goroutine per core. A call is cut into more chunks than workers
// and every participant (the caller included) claims chunks with an atomic
// counter, so a core that another process slows down takes fewer of them.
// The caller only hands the job to workers that are idle at that moment
// and always works itself, so a parallelFor inside a parallelFor body (a
// kernel called from a parallel region) cannot deadlock: it runs on
// whoever is free, at worst on the caller alone.

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
	joined   sync.WaitGroup
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

var (
	poolStart sync.Once
	poolJobs  chan *poolJob
	jobPool   freeList[poolJob]
)

func startPool() {
	poolJobs = make(chan *poolJob)
	for i := 1; i < runtime.GOMAXPROCS(0); i++ {
		go func() {
			for j := range poolJobs {
				debug.SetPanicOnFault(j.onFault)
				j.run()
				j.joined.Done()
			}
		}()
	}
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
	for i := 1; i < workers; i++ {
		j.joined.Add(1)
		select {
		case poolJobs <- j:
			continue
		default:
			j.joined.Done()
		}
		break
	}
	j.run()
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
