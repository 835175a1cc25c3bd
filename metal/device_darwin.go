//go:build darwin && cgo

package metal

/*
#cgo CFLAGS: -x objective-c -fno-objc-arc
#cgo LDFLAGS: -framework Metal -framework Foundation -framework CoreGraphics
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#import <Metal/Metal.h>

// The hot path and the calls darwinkit v0.5.0 cannot make (it panics on
// methods that take a Metal object argument, and its compute encoder has no
// endEncoding) are these few functions; everything else goes through
// darwinkit.

static void *mm_default_device(void) {
	@autoreleasepool {
		id<MTLDevice> d = MTLCreateSystemDefaultDevice();
		if (d == nil) {
			// Under ssh or tmux the default device can be nil while the GPU
			// is there.
			NSArray<id<MTLDevice>> *all = MTLCopyAllDevices();
			if ([all count] > 0) d = [[all objectAtIndex:0] retain];
			[all release];
		}
		return (void *)d;
	}
}

static void mm_error(NSError *err, char *buf, int n) {
	snprintf(buf, n, "%s", err ? [[err localizedDescription] UTF8String] : "unknown error");
}

static void *mm_pipeline(void *dev, void *fn, char *err, int errn) {
	@autoreleasepool {
		NSError *e = nil;
		id<MTLComputePipelineState> p =
			[(id<MTLDevice>)dev newComputePipelineStateWithFunction:(id<MTLFunction>)fn error:&e];
		if (p == nil) mm_error(e, err, errn);
		return (void *)p;
	}
}

// mm_stream is the command buffer being encoded and its open encoder.
typedef struct {
	id<MTLCommandQueue> queue;
	id<MTLCommandBuffer> cb;
	id<MTLComputeCommandEncoder> compute;
	id<MTLBlitCommandEncoder> blit;
} mm_stream;

static mm_stream *mm_stream_new(void *queue) {
	mm_stream *s = calloc(1, sizeof(mm_stream));
	s->queue = [(id<MTLCommandQueue>)queue retain];
	return s;
}

static void mm_end_encoder(mm_stream *s) {
	if (s->compute) {
		[s->compute endEncoding];
		[s->compute release];
		s->compute = nil;
	}
	if (s->blit) {
		[s->blit endEncoding];
		[s->blit release];
		s->blit = nil;
	}
}

static void mm_begin(mm_stream *s) {
	if (s->cb == nil) s->cb = [[s->queue commandBuffer] retain];
}

// mm_dispatch encodes one kernel launch. Serial dispatch: each launch sees
// the writes of the launches before it.
static void mm_dispatch(mm_stream *s, void *pipeline, int n, const uintptr_t *bufs, const uint64_t *offs,
                        const uint32_t *idx, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t tx, uint32_t ty,
                        uint32_t tz) {
	@autoreleasepool {
		mm_begin(s);
		if (s->blit) mm_end_encoder(s);
		if (s->compute == nil)
			s->compute = [[s->cb computeCommandEncoderWithDispatchType:MTLDispatchTypeSerial] retain];
		[s->compute setComputePipelineState:(id<MTLComputePipelineState>)pipeline];
		for (int i = 0; i < n; i++) [s->compute setBuffer:(id<MTLBuffer>)bufs[i] offset:offs[i] atIndex:idx[i]];
		[s->compute dispatchThreadgroups:MTLSizeMake(gx, gy, gz) threadsPerThreadgroup:MTLSizeMake(tx, ty, tz)];
	}
}

static void mm_copy(mm_stream *s, void *dst, uint64_t dstOff, void *src, uint64_t srcOff, uint64_t n) {
	@autoreleasepool {
		mm_begin(s);
		if (s->compute) mm_end_encoder(s);
		if (s->blit == nil) s->blit = [[s->cb blitCommandEncoder] retain];
		[s->blit copyFromBuffer:(id<MTLBuffer>)src sourceOffset:srcOff toBuffer:(id<MTLBuffer>)dst
		      destinationOffset:dstOff size:n];
	}
}

// Events: the device signals a value after the work the host needs and
// waits for the next value, which the host sets (see handoff). The host
// polls signaledValue rather than registering a listener block, which cgo
// cannot write without an Objective-C block trampoline.
static void *mm_event_new(void *dev) { return (void *)[(id<MTLDevice>)dev newSharedEvent]; }

static void mm_signal_event(mm_stream *s, void *ev, uint64_t v) {
	@autoreleasepool {
		mm_begin(s);
		mm_end_encoder(s);
		[s->cb encodeSignalEvent:(id<MTLEvent>)ev value:v];
	}
}

static void mm_wait_event(mm_stream *s, void *ev, uint64_t v) {
	@autoreleasepool {
		mm_begin(s);
		mm_end_encoder(s);
		[s->cb encodeWaitForEvent:(id<MTLEvent>)ev value:v];
	}
}

static uint64_t mm_event_value(void *ev) { return [(id<MTLSharedEvent>)ev signaledValue]; }

static void mm_event_set(void *ev, uint64_t v) { [(id<MTLSharedEvent>)ev setSignaledValue:v]; }

// mm_submit commits the command buffer without waiting; it returns 0 when
// nothing was encoded.
static int mm_submit(mm_stream *s) {
	if (s->cb == nil) return 0;
	@autoreleasepool {
		mm_end_encoder(s);
		[s->cb commit];
	}
	return 1;
}

// mm_failed reports whether the committed command buffer failed.
static int mm_failed(mm_stream *s) { return [s->cb status] == MTLCommandBufferStatusError; }

// mm_finish waits for the committed command buffer and returns 1 (with the
// error's text in err) when it failed.
static int mm_finish(mm_stream *s, char *err, int errn) {
	@autoreleasepool {
		[s->cb waitUntilCompleted];
		int bad = [s->cb status] == MTLCommandBufferStatusError;
		if (bad) mm_error([s->cb error], err, errn);
		[s->cb release];
		s->cb = nil;
		return bad;
	}
}

static void mm_release(void *obj) { [(id)obj release]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/progrium/darwinkit/macos/foundation"
	"github.com/progrium/darwinkit/macos/metal"
	"github.com/progrium/darwinkit/objc"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels/msl"
)

// New opens the system's Metal device and compiles every shader of
// kernels/msl (pipelines are built on first use). The executor is an
// *Executor. Without a usable device the error starts "Metal is not
// available" and the caller should fall back to the CPU executor.
func New() (graph.Executor, error) {
	d, err := openDevice()
	if err != nil {
		return nil, err
	}
	return newExecutor(d), nil
}

// Available reports whether a Metal device can be opened, and its name or
// why not.
func Available() (bool, string) {
	p := C.mm_default_device()
	if p == nil {
		return false, "Metal is not available: no Metal device found (MTLCreateSystemDefaultDevice and MTLCopyAllDevices returned none)"
	}
	defer C.mm_release(p)
	d := metal.DeviceObject{Object: objc.ObjectFrom(p)}
	if !d.HasUnifiedMemory() {
		return false, fmt.Sprintf("Metal is not available: %s has no unified memory (the executor needs shared-storage buffers)", d.Name())
	}
	return true, d.Name()
}

// metalDevice is the device interface over Metal.
type metalDevice struct {
	dev    metal.DeviceObject
	queue  metal.CommandQueueObject
	libs   []metal.LibraryObject
	pipes  map[string]*pipeline // built on first use; nil: no such kernel
	stream *C.mm_stream
	event  unsafe.Pointer // the MTLSharedEvent of handoffs
	label  string
	ws     int64
}

type pipeline struct {
	ptr        unsafe.Pointer
	maxThreads int
}

func openDevice() (*metalDevice, error) {
	p := C.mm_default_device()
	if p == nil {
		return nil, errors.New("Metal is not available: no Metal device found (MTLCreateSystemDefaultDevice and MTLCopyAllDevices returned none)")
	}
	d := metal.DeviceObject{Object: objc.ObjectFrom(p)}
	if !d.HasUnifiedMemory() {
		name := d.Name()
		C.mm_release(p)
		return nil, fmt.Errorf("Metal is not available: %s has no unified memory (the executor needs shared-storage buffers)", name)
	}
	md := &metalDevice{dev: d, pipes: map[string]*pipeline{}, label: d.Name(), ws: int64(d.RecommendedMaxWorkingSetSize())}
	md.queue = d.NewCommandQueue()
	if md.queue.IsNil() {
		return nil, fmt.Errorf("Metal is not available: %s gave no command queue", md.label)
	}
	opts := metal.NewCompileOptions()
	// The kernels are checked against float32 references; fast math would
	// trade that agreement for little speed.
	opts.SetFastMathEnabled(false)
	for _, name := range msl.Names() {
		src, err := msl.Source(name)
		if err != nil {
			return nil, err
		}
		var nserr unsafe.Pointer
		lib := d.NewLibraryWithSourceOptionsError(src, opts, unsafe.Pointer(&nserr))
		if lib.IsNil() {
			why := "no error given"
			if nserr != nil {
				why = foundation.ErrorFrom(nserr).LocalizedDescription()
			}
			return nil, fmt.Errorf("metal: compiling kernels/msl/%s: %s", name, why)
		}
		md.libs = append(md.libs, lib)
	}
	md.stream = C.mm_stream_new(md.queue.Ptr())
	if md.event = C.mm_event_new(d.Ptr()); md.event == nil {
		return nil, fmt.Errorf("Metal is not available: %s gave no shared event", md.label)
	}
	return md, nil
}

func (d *metalDevice) name() string      { return d.label }
func (d *metalDevice) workingSet() int64 { return d.ws }

func (d *metalDevice) alloc(n int) (*buffer, error) {
	b := d.dev.NewBufferWithLengthOptions(uint(n), metal.ResourceStorageModeShared)
	if b.IsNil() {
		return nil, fmt.Errorf("%s could not allocate a %d-byte shared buffer", d.label, n)
	}
	ptr := b.Contents()
	// Shared buffers start zeroed and on a page boundary.
	return &buffer{data: unsafe.Slice((*byte)(ptr), n), handle: b.Ptr()}, nil
}

func (d *metalDevice) release(b *buffer) {
	if b.handle != nil {
		C.mm_release(b.handle)
		b.handle = nil
		b.data = nil
	}
}

// pipeline returns the compute pipeline of the named kernel, building it
// from the first library that has the function.
func (d *metalDevice) pipeline(name string) *pipeline {
	if p, ok := d.pipes[name]; ok {
		return p
	}
	var p *pipeline
	for _, lib := range d.libs {
		fn := lib.NewFunctionWithName(name)
		if fn.IsNil() {
			continue
		}
		var msg [512]C.char
		ptr := C.mm_pipeline(d.dev.Ptr(), fn.Ptr(), &msg[0], C.int(len(msg)))
		fn.Release()
		if ptr == nil {
			// Remembered as absent: the op falls back to the host.
			break
		}
		ps := metal.ComputePipelineStateObject{Object: objc.ObjectFrom(ptr)}
		p = &pipeline{ptr: ptr, maxThreads: int(ps.MaxTotalThreadsPerThreadgroup())}
		break
	}
	d.pipes[name] = p
	return p
}

func (d *metalDevice) hasKernel(name string) bool { return d.pipeline(name) != nil }

func (d *metalDevice) dispatch(kernel string, groups, threads [3]int, args []binding) error {
	p := d.pipeline(kernel)
	if p == nil {
		return fmt.Errorf("no pipeline")
	}
	if t := threads[0] * threads[1] * threads[2]; t > p.maxThreads {
		return fmt.Errorf("%d threads per threadgroup, the pipeline allows %d", t, p.maxThreads)
	}
	n := len(args)
	bufs := make([]uintptr, n)
	offs := make([]uint64, n)
	idx := make([]uint32, n)
	for i, a := range args {
		bufs[i], offs[i], idx[i] = uintptr(a.buf.handle), uint64(a.off), uint32(a.index)
	}
	C.mm_dispatch(d.stream, p.ptr, C.int(n),
		(*C.uintptr_t)(unsafe.Pointer(&bufs[0])), (*C.uint64_t)(unsafe.Pointer(&offs[0])), (*C.uint32_t)(unsafe.Pointer(&idx[0])),
		C.uint32_t(groups[0]), C.uint32_t(groups[1]), C.uint32_t(groups[2]),
		C.uint32_t(threads[0]), C.uint32_t(threads[1]), C.uint32_t(threads[2]))
	runtime.KeepAlive(args)
	return nil
}

func (d *metalDevice) copy(dst *buffer, dstOff int, src *buffer, srcOff, n int) error {
	C.mm_copy(d.stream, dst.handle, C.uint64_t(dstOff), src.handle, C.uint64_t(srcOff), C.uint64_t(n))
	return nil
}

func (d *metalDevice) signalEvent(v uint64) { C.mm_signal_event(d.stream, d.event, C.uint64_t(v)) }

func (d *metalDevice) waitEvent(v uint64) { C.mm_wait_event(d.stream, d.event, C.uint64_t(v)) }

func (d *metalDevice) commit(hs []handoff) error {
	if C.mm_submit(d.stream) == 0 {
		return nil
	}
	var first error
	for i, h := range hs {
		if err := d.await(h.reached); err != nil {
			// The command buffer failed: release every wait so that it
			// can finish.
			C.mm_event_set(d.event, C.uint64_t(hs[len(hs)-1].release))
			first = err
			break
		}
		if err := h.run(); err != nil && first == nil {
			first = fmt.Errorf("handoff %d: %w", i, err)
		}
		C.mm_event_set(d.event, C.uint64_t(h.release))
	}
	var msg [512]C.char
	if C.mm_finish(d.stream, &msg[0], C.int(len(msg))) != 0 {
		return fmt.Errorf("command buffer failed on %s: %s", d.label, C.GoString(&msg[0]))
	}
	return first
}

// await polls the event until it reaches v: briefly yielding first (the
// router of one layer takes microseconds), then sleeping between polls.
func (d *metalDevice) await(v uint64) error {
	for i := 0; uint64(C.mm_event_value(d.event)) < v; i++ {
		if C.mm_failed(d.stream) != 0 {
			return fmt.Errorf("command buffer failed on %s before event %d", d.label, v)
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
	return nil
}
