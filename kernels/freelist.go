package kernels

import "sync"

// freeList recycles the kernels' per-call state (jobs with their bound work
// functions, tile and panel scratch) so that a warm decode step allocates
// nothing. Unlike a sync.Pool it is shared by every goroutine (a value put
// back by a pool worker on one P is taken by the caller on another, where
// sync.Pool's per-P private slot would make it allocate) and is not
// emptied by collections. It holds at most as many values as were ever in
// use at once.
type freeList[T any] struct {
	mu    sync.Mutex
	items []*T
	init  func(*T) // prepares a new value (binds its work functions), or nil
}

// get takes a recycled value, or makes one.
func (f *freeList[T]) get() *T {
	f.mu.Lock()
	if n := len(f.items); n > 0 {
		v := f.items[n-1]
		f.items = f.items[:n-1]
		f.mu.Unlock()
		return v
	}
	f.mu.Unlock()
	v := new(T)
	if f.init != nil {
		f.init(v)
	}
	return v
}

// put hands v back for a later get.
func (f *freeList[T]) put(v *T) {
	f.mu.Lock()
	f.items = append(f.items, v)
	f.mu.Unlock()
}
