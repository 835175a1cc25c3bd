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

// mm_library compiles one shader file. The language version is set rather
// than left to the compiler's default: MSL 3.1 (macOS 14) where bfloat
// exists, else 3.0 (the shaders guard bfloat with __METAL_VERSION__ >= 310).
// Fast math is off (the kernels are checked against float32 references):
// mathMode where it exists (macOS 15), fastMathEnabled before it.
static void *mm_library(void *dev, const char *src, char *err, int errn) {
	@autoreleasepool {
		MTLCompileOptions *o = [[MTLCompileOptions alloc] init];
		o.languageVersion = MTLLanguageVersion3_0;
		o.fastMathEnabled = NO;
		// What an older SDK (Xcode) does not declare is left out at build
		// time; what an older macOS lacks, at run time.
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 140000
		if (@available(macOS 14.0, *)) o.languageVersion = MTLLanguageVersion3_1;
#endif
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
		if (@available(macOS 15.0, *)) o.mathMode = MTLMathModeSafe;
#endif
		NSError *e = nil;
		id<MTLLibrary> lib = [(id<MTLDevice>)dev newLibraryWithSource:[NSString stringWithUTF8String:src] options:o error:&e];
		[o release];
		if (lib == nil) mm_error(e, err, errn);
		return (void *)lib;
	}
}

// mm_has_bfloat reports whether the compiler has MSL 3.1, where bfloat is.
static int mm_has_bfloat(void) {
#if __MAC_OS_X_VERSION_MAX_ALLOWED >= 140000
	if (@available(macOS 14.0, *)) return 1;
#endif
	return 0;
}

// mm_supports_apple7 reports whether the device is of the Apple7 family
// (M1 and later), whose SIMD-groups are 32 wide as every kernel assumes.
static int mm_supports_apple7(void *dev) { return [(id<MTLDevice>)dev supportsFamily:MTLGPUFamilyApple7]; }

// mm_pipeline_width is a pipeline's threadExecutionWidth (SIMD width).
static int mm_pipeline_width(void *p) { return (int)[(id<MTLComputePipelineState>)p threadExecutionWidth]; }

// mm_stream is the command buffer being encoded and its open encoder, and
// the buffers of the same pass committed early (mm_submit_early), which
// mm_finish waits for.
#define MM_MAX_EARLY 64
typedef struct {
	id<MTLCommandQueue> queue;
	id<MTLCommandBuffer> cb;
	id<MTLComputeCommandEncoder> compute;
	id<MTLBlitCommandEncoder> blit;
	id<MTLCommandBuffer> early[MM_MAX_EARLY];
	int nearly;
} mm_stream;

// Go holds a stream as an opaque pointer (mm_stream's Objective-C fields
// have no Go form), so the functions Go calls take void *.
static void *mm_stream_new(void *queue) {
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
static void mm_dispatch(void *sp, void *pipeline, int n, const uintptr_t *bufs, const uint64_t *offs,
                        const uint32_t *idx, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t tx, uint32_t ty,
                        uint32_t tz) {
	mm_stream *s = sp;
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

static void mm_copy(void *sp, void *dst, uint64_t dstOff, void *src, uint64_t srcOff, uint64_t n)  {
	mm_stream *s = sp;
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
// blocks in waitUntilSignaledValue:timeoutMS: (macOS 12) in short slices,
// checking between them whether the command buffer failed, rather than
// registering a listener block, which cgo cannot write without an
// Objective-C block trampoline.
static void *mm_event_new(void *dev) { return (void *)[(id<MTLDevice>)dev newSharedEvent]; }

static void mm_signal_event(void *sp, void *ev, uint64_t v)  {
	mm_stream *s = sp;
	@autoreleasepool {
		mm_begin(s);
		mm_end_encoder(s);
		[s->cb encodeSignalEvent:(id<MTLEvent>)ev value:v];
	}
}

static void mm_wait_event(void *sp, void *ev, uint64_t v)  {
	mm_stream *s = sp;
	@autoreleasepool {
		mm_begin(s);
		mm_end_encoder(s);
		[s->cb encodeWaitForEvent:(id<MTLEvent>)ev value:v];
	}
}

static int mm_event_wait(void *ev, uint64_t v, uint64_t ms) {
	return [(id<MTLSharedEvent>)ev waitUntilSignaledValue:v timeoutMS:ms];
}

static void mm_event_set(void *ev, uint64_t v) { [(id<MTLSharedEvent>)ev setSignaledValue:v]; }

// mm_submit_early commits the command buffer being encoded without
// waiting, so that the GPU starts on it while the host encodes the rest of
// the pass (the queue runs buffers in order); the next encode opens a new
// one. mm_finish waits for it.
static void mm_submit_early(void *sp) {
	mm_stream *s = sp;
	if (s->cb == nil || s->nearly == MM_MAX_EARLY) return;
	@autoreleasepool {
		mm_end_encoder(s);
		[s->cb commit];
	}
	s->early[s->nearly++] = s->cb;
	s->cb = nil;
}

// mm_submit commits the command buffer without waiting; it returns 0 when
// nothing was encoded since the last mm_finish.
static int mm_submit(void *sp) {
	mm_stream *s = sp;
	if (s->cb == nil) return s->nearly > 0;
	@autoreleasepool {
		mm_end_encoder(s);
		[s->cb commit];
	}
	return 1;
}

// mm_failed reports whether a committed command buffer of the pass failed.
static int mm_failed(void *sp) {
	mm_stream *s = sp;
	for (int i = 0; i < s->nearly; i++)
		if ([s->early[i] status] == MTLCommandBufferStatusError) return 1;
	return [s->cb status] == MTLCommandBufferStatusError;
}

// mm_finish waits for the committed command buffers of the pass and
// returns 1 (with the first error's text in err) when one failed.
static int mm_finish(void *sp, char *err, int errn)  {
	mm_stream *s = sp;
	int bad = 0;
	@autoreleasepool {
		for (int i = 0; i < s->nearly; i++) {
			[s->early[i] waitUntilCompleted];
			if (!bad && [s->early[i] status] == MTLCommandBufferStatusError) {
				bad = 1;
				mm_error([s->early[i] error], err, errn);
			}
			[s->early[i] release];
			s->early[i] = nil;
		}
		s->nearly = 0;
		if (s->cb != nil) {
			[s->cb waitUntilCompleted];
			if (!bad && [s->cb status] == MTLCommandBufferStatusError) {
				bad = 1;
				mm_error([s->cb error], err, errn);
			}
			[s->cb release];
			s->cb = nil;
		}
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
	"unsafe"

	"github.com/progrium/darwinkit/macos/metal"
	"github.com/progrium/darwinkit/objc"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels/msl"
)

// New opens the system's Metal device and compiles the shaders of
// kernels/msl, the quantized kernels per format on first use (pipelines
// are built on first use). The executor is an *Executor. Without a usable
// device (no Metal, no unified memory, not an Apple7-family GPU) the error
// wraps ErrNotAvailable and starts "Metal is not available": fall back to
// the CPU executor then, and only then; any other error (a shader Apple's
// compiler rejects) is a bug to report.
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
	d, err := defaultDevice()
	if err != nil {
		return false, err.Error()
	}
	defer C.mm_release(d.Ptr())
	return true, d.Name()
}

// defaultDevice returns the system's Metal device (retained) if the
// executor can use it: unified memory for shared-storage buffers, and the
// Apple7 family (M1 or later) for 32-wide SIMD-groups. Otherwise the
// error wraps ErrNotAvailable and says which requirement failed.
func defaultDevice() (metal.DeviceObject, error) {
	p := C.mm_default_device()
	if p == nil {
		return metal.DeviceObject{}, notAvailableError("no Metal device found (MTLCreateSystemDefaultDevice and MTLCopyAllDevices returned none)")
	}
	d := metal.DeviceObject{Object: objc.ObjectFrom(p)}
	var why string
	switch {
	case !d.HasUnifiedMemory():
		why = "has no unified memory (the executor needs shared-storage buffers)"
	case C.mm_supports_apple7(p) == 0:
		why = "is not an Apple7-family GPU (M1 or later); the kernels assume 32-wide SIMD-groups"
	default:
		return d, nil
	}
	name := d.Name()
	C.mm_release(p)
	return metal.DeviceObject{}, notAvailableError("%s %s; use the CPU executor", name, why)
}

// metalDevice is the device interface over Metal.
type metalDevice struct {
	dev   metal.DeviceObject
	queue metal.CommandQueueObject
	libs  []metal.LibraryObject
	// quant holds quantized.metal compiled per format (by quantFormat's
	// name), or the error compiling it.
	quant  map[string]quantLibrary
	pipes  pipelines[*pipeline] // built on first use
	stream unsafe.Pointer       // the C mm_stream
	event  unsafe.Pointer       // the MTLSharedEvent of handoffs
	label  string
	ws     int64
	// bufs, offs and idx are dispatch's arrays for mm_dispatch.
	bufs []uintptr
	offs []uint64
	idx  []uint32
}

type quantLibrary struct {
	lib metal.LibraryObject
	err error
}

// compile builds a library from source; what names it in errors.
func (d *metalDevice) compile(what, src string) (metal.LibraryObject, error) {
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	var msg [2048]C.char
	lib := C.mm_library(d.dev.Ptr(), csrc, &msg[0], C.int(len(msg)))
	if lib == nil {
		return metal.LibraryObject{}, fmt.Errorf("metal: compiling kernels/msl/%s: %s", what, C.GoString(&msg[0]))
	}
	return metal.LibraryObject{Object: objc.ObjectFrom(lib)}, nil
}

// libraryFor returns the libraries that may hold kernel: for a quantized
// kernel its format's build of quantized.metal (compiled now if it is the
// first of its format; none for bfloat scales before MSL 3.1, whose ops
// run on the host), else the files compiled at start.
func (d *metalDevice) libraryFor(kernel string) ([]metal.LibraryObject, error) {
	format, bf16, defines, ok := quantFormat(kernel)
	if !ok {
		return d.libs, nil
	}
	if bf16 && C.mm_has_bfloat() == 0 {
		return nil, nil
	}
	q, seen := d.quant[format]
	if !seen {
		src, err := msl.Source(quantizedFile)
		if err == nil {
			q.lib, err = d.compile(quantizedFile+" for "+format, defines+src)
		}
		q.err = err
		if d.quant == nil {
			d.quant = map[string]quantLibrary{}
		}
		d.quant[format] = q
	}
	if q.err != nil {
		return nil, q.err
	}
	return []metal.LibraryObject{q.lib}, nil
}

type pipeline struct {
	ptr        unsafe.Pointer
	maxThreads int
}

func openDevice() (*metalDevice, error) {
	d, err := defaultDevice()
	if err != nil {
		return nil, err
	}
	md := &metalDevice{dev: d, label: d.Name(), ws: int64(d.RecommendedMaxWorkingSetSize())}
	md.pipes.build = md.buildPipeline
	md.queue = d.NewCommandQueue()
	if md.queue.IsNil() {
		return nil, notAvailableError("%s gave no command queue", md.label)
	}
	// Every file but the quantized kernels now; those per format on first
	// use (buildPipeline).
	for _, name := range msl.Names() {
		if name == quantizedFile {
			continue
		}
		src, err := msl.Source(name)
		if err != nil {
			return nil, err
		}
		lib, err := md.compile(name, src)
		if err != nil {
			return nil, err
		}
		md.libs = append(md.libs, lib)
	}
	md.stream = C.mm_stream_new(md.queue.Ptr())
	if md.event = C.mm_event_new(d.Ptr()); md.event == nil {
		return nil, notAvailableError("%s gave no shared event", md.label)
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

// buildPipeline builds the named kernel's compute pipeline from the first
// library that has the function. A pipeline Metal refuses, or one whose
// SIMD width is not the 32 every kernel assumes, is an error (never a
// silent fallback to the host).
func (d *metalDevice) buildPipeline(name string) (*pipeline, bool, error) {
	libs, err := d.libraryFor(name)
	if err != nil {
		return nil, true, err
	}
	for _, lib := range libs {
		fn := lib.NewFunctionWithName(name)
		if fn.IsNil() {
			continue
		}
		var msg [2048]C.char
		ptr := C.mm_pipeline(d.dev.Ptr(), fn.Ptr(), &msg[0], C.int(len(msg)))
		fn.Release()
		if ptr == nil {
			return nil, true, errors.New(C.GoString(&msg[0]))
		}
		if w := int(C.mm_pipeline_width(ptr)); w != 32 {
			C.mm_release(ptr)
			return nil, true, fmt.Errorf("threadExecutionWidth is %d on %s; the kernel needs 32-wide SIMD-groups", w, d.label)
		}
		ps := metal.ComputePipelineStateObject{Object: objc.ObjectFrom(ptr)}
		return &pipeline{ptr: ptr, maxThreads: int(ps.MaxTotalThreadsPerThreadgroup())}, true, nil
	}
	return nil, false, nil
}

func (d *metalDevice) hasKernel(name string) bool { return d.pipes.has(name) }

func (d *metalDevice) dispatch(kernel string, groups, threads [3]int, args []binding) error {
	p, err := d.pipes.pipeline(kernel)
	if err != nil {
		return err
	}
	if t := threads[0] * threads[1] * threads[2]; t > p.maxThreads {
		return fmt.Errorf("%d threads per threadgroup, the pipeline allows %d", t, p.maxThreads)
	}
	n := len(args)
	// The device's own arrays, reused: a dispatch allocates nothing.
	d.bufs, d.offs, d.idx = d.bufs[:0], d.offs[:0], d.idx[:0]
	for _, a := range args {
		d.bufs = append(d.bufs, uintptr(a.buf.handle))
		d.offs = append(d.offs, uint64(a.off))
		d.idx = append(d.idx, uint32(a.index))
	}
	bufs, offs, idx := d.bufs, d.offs, d.idx
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

func (d *metalDevice) submitEarly() { C.mm_submit_early(d.stream) }

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

// await blocks until the event reaches v, in slices of awaitSliceMS, and
// gives up when the command buffer has failed (its later signals will
// never come).
func (d *metalDevice) await(v uint64) error {
	for C.mm_event_wait(d.event, C.uint64_t(v), awaitSliceMS) == 0 {
		if C.mm_failed(d.stream) != 0 {
			return fmt.Errorf("command buffer failed on %s before event %d", d.label, v)
		}
	}
	return nil
}

const awaitSliceMS = 50
