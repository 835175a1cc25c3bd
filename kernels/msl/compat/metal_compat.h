// metal_compat.h: just enough of the Metal Shading Language, as C++17, to
// compile the shaders in kernels/msl with clang++ or g++ and run them on the
// CPU (kernels/mslharness). Shaders include <metal_stdlib> as usual; the
// harness puts this directory first on the include path.
//
// How Metal is mapped:
//   - Address spaces: device, constant and thread are empty. threadgroup is
//     `static`, so a threadgroup array declared in a kernel is shared by the
//     threads of the threadgroup. Where the keyword qualifies a parameter or
//     a cast (after "(" or ","), the harness replaces it with
//     MSL_THREADGROUP_PARAM.
//     Threadgroup variables live in their own linker section. The runtime
//     runs two threadgroups at a time (kConcurrentGroups), their threads
//     interleaved at every barrier and SIMD-group function, and swaps each
//     group's copy of the kernel's part of the section in while its threads
//     run (the harness finds that part from the runner's symbols; without
//     it, the whole section). Each copy starts as 0xff bytes (NaN floats),
//     as Metal gives no initial value (g++ leaves out variables of function
//     templates, which then keep their previous contents; clang does not).
//   - [[...]] attributes are ignored by the C++ compiler; the harness reads
//     them from the preprocessed source to bind buffers and thread positions.
//   - A threadgroup's threads are fibers (a few lines of assembly on x86-64,
//     ucontext elsewhere) on one OS thread. At each
//     threadgroup_barrier and each SIMD-group function every thread really
//     waits for the others; the fibers resume in a shuffled order every
//     round, so a missing barrier shows up as a wrong result. A barrier not
//     reached by every thread is reported as a deadlock.
//   - SIMD-groups are 32 consecutive threads of the threadgroup.
//   - simdgroup_matrix (8x8 tiles, simdgroup_load/store/multiply[_accumulate])
//     is a whole matrix per lane; the functions are collectives that check
//     every lane passes the same address and layout.
//   - With -DMSL_ADDRESS_SPACE_CHECK (clang only, -fsyntax-only), the
//     address spaces become clang address spaces instead, so that the
//     harness can check that a shader keeps them apart as Metal requires.
//   - half and bfloat are 16-bit storage types that convert to and from float
//     with round-to-nearest-even, like Metal; arithmetic happens in float.
#pragma once

#if defined(__APPLE__) && !(defined(__x86_64__) && !defined(MSL_ADDRESS_SPACE_CHECK))
// Before any system header: macOS keeps the (deprecated, still working)
// ucontext routines behind _XOPEN_SOURCE, and its <ucontext.h> is an error
// without it; _DARWIN_C_SOURCE keeps the rest of the system headers
// complete. The deprecation warnings are silenced around the two functions
// that use ucontext only, so -Werror still holds for the shaders.
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 600
#endif
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif
#define MSL_UCONTEXT_DEPRECATED 1
#endif

// The CPU build plays MSL 3.1, where bfloat exists (as Metal's compiler
// defines it: 310 for 3.1). Set -D__METAL_VERSION__=300 to build what a
// macOS 13 library holds.
#ifndef __METAL_VERSION__
#define __METAL_VERSION__ 310
#endif

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <signal.h>
#include <sys/mman.h>
#include <type_traits>
#include <unistd.h>
#if !(defined(__x86_64__) && !defined(MSL_ADDRESS_SPACE_CHECK))
#include <ucontext.h>
#endif
#include <utility>
#include <vector>

typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned char uchar;
typedef unsigned long ulong;

// ---------------------------------------------------------------------------
// 16-bit float types.

namespace mslrt {
inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    float v = std::ldexp(float(mant), -24);  // subnormal
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00);  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to inf
  if (a < 0x38800000u) {                                 // subnormal or zero
    float v = bits_f32(a) * 16777216.0f;                  // scale by 2^24: now an integer count of 2^-24
    return uint16_t(sign | uint16_t(std::nearbyint(v)));
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
  return uint16_t(sign | (r >> 13));
}
}  // namespace mslrt

#ifdef MSL_ADDRESS_SPACE_CHECK
// The address-space check only type-checks (clang -fsyntax-only). Member
// functions cannot be called on address-space-qualified objects, so the
// 16-bit types are distinct scalar types here: enums, which convert to float
// implicitly and from float explicitly (write half(x), not half h = x).
enum half : uint16_t {};
enum bfloat : uint16_t {};
#else
struct half {
  uint16_t bits;
  half() = default;
  half(float f) : bits(mslrt::f32_to_f16(f)) {}
  half(double d) : half(float(d)) {}
  half(int i) : half(float(i)) {}
  half(uint i) : half(float(i)) {}
  operator float() const { return mslrt::f16_to_f32(bits); }
  half& operator+=(float o) { return *this = half(float(*this) + o); }
  half& operator-=(float o) { return *this = half(float(*this) - o); }
  half& operator*=(float o) { return *this = half(float(*this) * o); }
  half& operator/=(float o) { return *this = half(float(*this) / o); }
};

struct bfloat {
  uint16_t bits;
  bfloat() = default;
  bfloat(float f) : bits(mslrt::f32_to_bf16(f)) {}
  bfloat(double d) : bfloat(float(d)) {}
  bfloat(int i) : bfloat(float(i)) {}
  bfloat(uint i) : bfloat(float(i)) {}
  operator float() const { return mslrt::bits_f32(uint32_t(bits) << 16); }
  bfloat& operator+=(float o) { return *this = bfloat(float(*this) + o); }
  bfloat& operator-=(float o) { return *this = bfloat(float(*this) - o); }
  bfloat& operator*=(float o) { return *this = bfloat(float(*this) * o); }
  bfloat& operator/=(float o) { return *this = bfloat(float(*this) / o); }
};
#endif

// ---------------------------------------------------------------------------
// Vector types: float2/3/4, half2/4, uint2/3/4, int2/3/4, ushort2, ...

template <class T, int N> struct mslvec;

#define MSL_VEC_COMMON(N)                                                         \
  T& operator[](int i) { return (&x)[i]; }                                        \
  const T& operator[](int i) const { return (&x)[i]; }                            \
  template <class U> explicit mslvec(const mslvec<U, N>& o) {                     \
    for (int i = 0; i < N; i++) (*this)[i] = T(o[i]);                             \
  }

template <class T> struct mslvec<T, 2> {
  T x, y;
  mslvec() = default;
  mslvec(T s) : x(s), y(s) {}
  mslvec(T a, T b) : x(a), y(b) {}
  MSL_VEC_COMMON(2)
};
template <class T> struct mslvec<T, 3> {
  T x, y, z;
  mslvec() = default;
  mslvec(T s) : x(s), y(s), z(s) {}
  mslvec(T a, T b, T c) : x(a), y(b), z(c) {}
  MSL_VEC_COMMON(3)
};
template <class T> struct mslvec<T, 4> {
  T x, y, z, w;
  mslvec() = default;
  mslvec(T s) : x(s), y(s), z(s), w(s) {}
  mslvec(T a, T b, T c, T d) : x(a), y(b), z(c), w(d) {}
  mslvec(mslvec<T, 2> a, mslvec<T, 2> b) : x(a.x), y(a.y), z(b.x), w(b.y) {}
  MSL_VEC_COMMON(4)
};
#undef MSL_VEC_COMMON

#define MSL_VEC_OP(op)                                                                  \
  template <class T, int N> mslvec<T, N> operator op(mslvec<T, N> a, mslvec<T, N> b) {  \
    for (int i = 0; i < N; i++) a[i] = T(a[i] op b[i]);                                 \
    return a;                                                                           \
  }                                                                                     \
  template <class T, int N> mslvec<T, N> operator op(mslvec<T, N> a, T s) {             \
    for (int i = 0; i < N; i++) a[i] = T(a[i] op s);                                    \
    return a;                                                                           \
  }                                                                                     \
  template <class T, int N> mslvec<T, N> operator op(T s, mslvec<T, N> a) {             \
    for (int i = 0; i < N; i++) a[i] = T(s op a[i]);                                    \
    return a;                                                                           \
  }                                                                                     \
  template <class T, int N, class B> mslvec<T, N>& operator op##=(mslvec<T, N>& a, B b) { \
    return a = a op b;                                                                  \
  }
MSL_VEC_OP(+)
MSL_VEC_OP(-)
MSL_VEC_OP(*)
MSL_VEC_OP(/)
MSL_VEC_OP(&)
MSL_VEC_OP(|)
MSL_VEC_OP(^)
MSL_VEC_OP(<<)
MSL_VEC_OP(>>)
#undef MSL_VEC_OP
template <class T, int N> mslvec<T, N> operator-(mslvec<T, N> a) {
  for (int i = 0; i < N; i++) a[i] = T(-a[i]);
  return a;
}

#define MSL_VEC_TYPES(T, name) \
  typedef mslvec<T, 2> name##2;  \
  typedef mslvec<T, 3> name##3;  \
  typedef mslvec<T, 4> name##4;
MSL_VEC_TYPES(float, float)
MSL_VEC_TYPES(half, half)
MSL_VEC_TYPES(bfloat, bfloat)
MSL_VEC_TYPES(int, int)
MSL_VEC_TYPES(uint, uint)
MSL_VEC_TYPES(short, short)
MSL_VEC_TYPES(ushort, ushort)
MSL_VEC_TYPES(char, char)
MSL_VEC_TYPES(uchar, uchar)
MSL_VEC_TYPES(ulong, ulong)
#undef MSL_VEC_TYPES

// ---------------------------------------------------------------------------
// The fiber runtime that plays the threadgroups of a grid, two at a time.

namespace mslrt {

// Thread positions, as the [[...]] attributes name them.
struct ThreadCtx {
  uint3 thread_position_in_grid, threadgroup_position_in_grid, thread_position_in_threadgroup;
  uint3 threads_per_threadgroup, threadgroups_per_grid, threads_per_grid;
  uint thread_index_in_threadgroup, thread_index_in_simdgroup, simdgroup_index_in_threadgroup;
  uint threads_per_simdgroup, simdgroups_per_threadgroup;
};

struct Barrier {
  uint expected = 0, arrived = 0, generation = 0;
};

enum { kSimdWidth = 32, kMaxThreads = 1024, kSlotBytes = 16, kStackBytes = 256 * 1024 };

struct SimdGroup {
  Barrier barrier;
  unsigned char slots[kSimdWidth][kSlotBytes];
};

// Switching fibers: glibc's swapcontext makes two sigprocmask system calls
// per switch, which was most of the harness's run time (a barrier switches
// every thread out and back in). On x86-64 a fiber switch is a few moves:
// push the callee-saved registers, swap stack pointers, pop. Elsewhere the
// fibers stay on ucontext.
// (g++ before 8 ignores naked on x86, which -Wno-attributes would hide.)
#if defined(__x86_64__) && !defined(MSL_ADDRESS_SPACE_CHECK) && (defined(__clang__) || __GNUC__ >= 8)
#define MSL_FAST_FIBERS 1
struct Context {
  void* sp = nullptr;
};
// fiber_switch saves the caller's registers on its stack, stores its stack
// pointer in *from and resumes the context whose stack pointer is to.
__attribute__((naked, noinline)) static void fiber_switch(void** /*from*/, void* /*to*/) {
  asm volatile(
      "pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n\t"
      "movq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n\t"
      "popq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret");
}
#else
struct Context {
  ucontext_t uc;
};
#endif

struct Fiber {
  Context ctx;
  char* stack = nullptr;
  ThreadCtx t;
  bool done = false;
  int group = 0;  // which of the threadgroups in flight
};

// Threadgroups in flight at once: their threads interleave at every
// barrier and SIMD-group function, so a kernel that relies on threadgroups
// running one after another (reading what another wrote) shows it.
enum { kConcurrentGroups = 2 };

// Group is one threadgroup in flight: its barrier, its SIMD-groups and a
// copy of its threadgroup memory while another group's threads run.
struct Group {
  Barrier tg;
  std::vector<SimdGroup> simdgroups;
  std::vector<unsigned char> memory;
  uint first = 0, threads = 0;  // its fibers
  bool live = false;
};

struct Scheduler {
  Context main;
  std::vector<Fiber> fibers;
  Group groups[kConcurrentGroups];
  std::vector<int> order;
  // The threadgroup memory the kernel uses: poisoned for every threadgroup
  // and swapped between the groups in flight.
  char* tg_mem = nullptr;
  size_t tg_len = 0;
  int current = -1;
  bool progress = false;
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  void (*body)(const ThreadCtx&, void*) = nullptr;
  void* arg = nullptr;
  const char* kernel = "";
};

inline Scheduler& sched() {
  static Scheduler s;
  return s;
}

inline Fiber& self() { return sched().fibers[sched().current]; }
inline Group& my_group() { return sched().groups[self().group]; }
inline SimdGroup& my_simdgroup() { return my_group().simdgroups[self().t.simdgroup_index_in_threadgroup]; }

[[noreturn]] inline void fail(const char* what) {
  Scheduler& s = sched();
  if (s.current >= 0) {
    const ThreadCtx& t = self().t;
    std::fprintf(stderr, "kernel %s, threadgroup (%u,%u,%u), thread %u: %s\n", s.kernel,
                 t.threadgroup_position_in_grid.x, t.threadgroup_position_in_grid.y,
                 t.threadgroup_position_in_grid.z, t.thread_index_in_threadgroup, what);
  } else {
    std::fprintf(stderr, "kernel %s: %s\n", s.kernel, what);
  }
  std::exit(3);
}

#ifdef MSL_UCONTEXT_DEPRECATED
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
#endif
inline void switch_context(Context& from, Context& to) {
#ifdef MSL_FAST_FIBERS
  fiber_switch(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
}

inline void yield() {
  Scheduler& s = sched();
  switch_context(s.fibers[s.current].ctx, s.main);
}

// wait blocks the calling thread until b.expected threads have arrived.
inline void wait(Barrier& b) {
  Scheduler& s = sched();
  s.progress = true;
  uint gen = b.generation;
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    b.generation++;
    return;
  }
  while (b.generation == gen) yield();
  s.progress = true;
}

inline void fiber_entry() {
  Scheduler& s = sched();
  s.body(s.fibers[s.current].t, s.arg);
  s.fibers[s.current].done = true;
  s.progress = true;
#ifdef MSL_FAST_FIBERS
  // A finished fiber is never resumed; there is no uc_link to return to.
  switch_context(s.fibers[s.current].ctx, s.main);
  std::abort();
#endif
}

// start_fiber makes f run fiber_entry from the top of its stack when it is
// next switched to.
inline void start_fiber(Fiber& f, Context& main) {
#ifdef MSL_FAST_FIBERS
  (void)main;
  // What fiber_switch pops: six zero registers, then fiber_entry as the
  // return address, placed so that fiber_entry starts with the stack
  // alignment of a called function; above it a null return address.
  uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 64);
  for (int i = 0; i < 6; i++) sp[i] = nullptr;
  sp[6] = reinterpret_cast<void*>(&fiber_entry);
  sp[7] = nullptr;
  f.ctx.sp = sp;
#else
  getcontext(&f.ctx.uc);
  f.ctx.uc.uc_stack.ss_sp = f.stack;
  f.ctx.uc.uc_stack.ss_size = kStackBytes;
  f.ctx.uc.uc_link = &main.uc;
  makecontext(&f.ctx.uc, fiber_entry, 0);
#endif
}
#ifdef MSL_UCONTEXT_DEPRECATED
#pragma clang diagnostic pop
#endif

}  // namespace mslrt

// Bounds of the threadgroup-variable section (null when there is none).
// ELF linkers define __start_/__stop_ symbols for a section whose name is a
// C identifier; Mach-O's ld64 names them section$start$SEGMENT$SECTION, and
// a Mach-O section attribute is "segment,section" (section names at most 16
// characters).
#ifdef __APPLE__
#define MSL_TG_SECTION "__DATA,msl_tgroup"
extern "C" char msl_tg_start[] __asm("section$start$__DATA$msl_tgroup");
extern "C" char msl_tg_stop[] __asm("section$end$__DATA$msl_tgroup");
#define __start_msl_threadgroup msl_tg_start
#define __stop_msl_threadgroup msl_tg_stop
#else
#define MSL_TG_SECTION "msl_threadgroup"
extern "C" char __start_msl_threadgroup[] __attribute__((weak));
extern "C" char __stop_msl_threadgroup[] __attribute__((weak));
#endif

namespace mslrt {

// run_groups plays the groups set up in s.groups to completion, their
// threads interleaved: each round visits the live groups in a shuffled
// order, swapping in the group's threadgroup memory, and runs each of its
// threads (in a shuffled order) until it waits or ends.
inline void run_groups() {
  Scheduler& s = sched();
  for (Group& g : s.groups) {
    if (!g.live) continue;
    g.tg = Barrier();
    g.tg.expected = g.threads;
    uint nsg = (g.threads + kSimdWidth - 1) / kSimdWidth;
    g.simdgroups.resize(nsg);
    for (uint i = 0; i < nsg; i++) {
      g.simdgroups[i].barrier = Barrier();
      g.simdgroups[i].barrier.expected = std::min<uint>(kSimdWidth, g.threads - i * kSimdWidth);
    }
    // Metal gives threadgroup memory no initial value: NaN floats here.
    g.memory.assign(s.tg_len, 0xff);
    for (uint i = g.first; i < g.first + g.threads; i++) {
      s.fibers[i].done = false;
      start_fiber(s.fibers[i], s.main);
    }
  }
  uint live = 0;
  for (Group& g : s.groups)
    if (g.live) live += g.threads;
  int gorder[kConcurrentGroups];
  for (int i = 0; i < kConcurrentGroups; i++) gorder[i] = i;
  while (live > 0) {
    s.progress = false;
    for (int i = kConcurrentGroups; i > 1; i--) {
      s.rng ^= s.rng << 13, s.rng ^= s.rng >> 7, s.rng ^= s.rng << 17;
      std::swap(gorder[i - 1], gorder[s.rng % i]);
    }
    for (int gi : gorder) {
      Group& g = s.groups[gi];
      if (!g.live) continue;
      if (s.tg_len) std::memcpy(s.tg_mem, g.memory.data(), s.tg_len);
      s.order.resize(g.threads);
      for (uint i = 0; i < g.threads; i++) s.order[i] = int(g.first + i);
      for (uint i = g.threads; i > 1; i--) {
        s.rng ^= s.rng << 13, s.rng ^= s.rng >> 7, s.rng ^= s.rng << 17;
        std::swap(s.order[i - 1], s.order[s.rng % i]);
      }
      uint running = 0;
      for (int i : s.order) {
        if (s.fibers[i].done) continue;
        s.current = i;
        switch_context(s.main, s.fibers[i].ctx);
        if (s.fibers[i].done) live--;
        else running++;
      }
      s.current = -1;
      if (s.tg_len) std::memcpy(g.memory.data(), s.tg_mem, s.tg_len);
      if (running == 0) g.live = false;
    }
    if (!s.progress) {
      std::fprintf(stderr, "kernel %s: deadlock: %u threads wait at a barrier or SIMD-group function that the others of their threadgroup never reach\n", s.kernel, live);
      std::exit(3);
    }
  }
}

inline void on_segv(int) {
  static const char msg[] = "out-of-bounds memory access (SIGSEGV): a buffer was read or written past its end, or a thread overflowed its stack\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(4);
}

// dispatch runs body for every thread of a grid of groups threadgroups of
// threads threads, kConcurrentGroups threadgroups at a time. tg_mem and
// tg_len are the threadgroup memory the kernel uses (tg_len 0: none).
inline void dispatch(const char* kernel, uint3 groups, uint3 threads, uint64_t seed,
                     void (*body)(const ThreadCtx&, void*), void* arg, char* tg_mem, size_t tg_len) {
  Scheduler& s = sched();
  s.kernel = kernel;
  uint n = threads.x * threads.y * threads.z;
  if (n == 0 || n > kMaxThreads) fail("threads per threadgroup must be 1..1024");
  s.rng = seed ? seed : 0x9e3779b97f4a7c15ull;  // 0: the fixed order, in every launch
  static bool handler = false;
  if (!handler) {
    static char altstack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    handler = true;
  }
  size_t nf = size_t(n) * kConcurrentGroups;
  if (s.fibers.size() < nf) {
    size_t old = s.fibers.size();
    s.fibers.resize(nf);
    for (size_t i = old; i < nf; i++) s.fibers[i].stack = static_cast<char*>(std::malloc(kStackBytes));
  }
  s.body = body;
  s.arg = arg;
  s.tg_mem = tg_mem;
  s.tg_len = tg_len;
  uint total = groups.x * groups.y * groups.z;
  for (uint g0 = 0; g0 < total; g0 += kConcurrentGroups) {
    for (uint gi = 0; gi < uint(kConcurrentGroups); gi++) {
      Group& grp = s.groups[gi];
      uint g = g0 + gi;
      grp.live = g < total;
      grp.first = gi * n;
      grp.threads = n;
      if (!grp.live) continue;
      uint gx = g % groups.x, gy = (g / groups.x) % groups.y, gz = g / (groups.x * groups.y);
      for (uint i = 0; i < n; i++) {
        Fiber& f = s.fibers[grp.first + i];
        f.group = int(gi);
        ThreadCtx& t = f.t;
        uint3 p(i % threads.x, (i / threads.x) % threads.y, i / (threads.x * threads.y));
        t.thread_position_in_threadgroup = p;
        t.threadgroup_position_in_grid = uint3(gx, gy, gz);
        t.thread_position_in_grid = uint3(gx * threads.x + p.x, gy * threads.y + p.y, gz * threads.z + p.z);
        t.threads_per_threadgroup = threads;
        t.threadgroups_per_grid = groups;
        t.threads_per_grid = uint3(groups.x * threads.x, groups.y * threads.y, groups.z * threads.z);
        t.thread_index_in_threadgroup = i;
        t.thread_index_in_simdgroup = i % kSimdWidth;
        t.simdgroup_index_in_threadgroup = i / kSimdWidth;
        t.threads_per_simdgroup = kSimdWidth;
        t.simdgroups_per_threadgroup = (n + kSimdWidth - 1) / kSimdWidth;
      }
    }
    run_groups();
  }
}

// simd_exchange publishes v for the caller's SIMD-group, waits for every
// lane, and calls f(values, lanes) for the result; a second wait keeps the
// slots alive until every lane has read them.
template <class T, class F> T simd_exchange(T v, F f) {
  static_assert(sizeof(T) <= kSlotBytes, "SIMD-group value too large");
  Fiber& me = self();
  SimdGroup& g = my_simdgroup();
  std::memcpy(g.slots[me.t.thread_index_in_simdgroup], &v, sizeof(T));
  wait(g.barrier);
  T vals[kSimdWidth] = {};
  uint lanes = g.barrier.expected;
  for (uint i = 0; i < lanes; i++) std::memcpy(&vals[i], g.slots[i], sizeof(T));
  T r = f(vals, lanes, me.t.thread_index_in_simdgroup);
  wait(g.barrier);
  return r;
}
}  // namespace mslrt

// ---------------------------------------------------------------------------
// The metal namespace: math, barriers, SIMD-group functions.

namespace metal {
using std::numeric_limits;

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };

inline void threadgroup_barrier(mem_flags) { mslrt::wait(mslrt::my_group().tg); }
inline void simdgroup_barrier(mem_flags) { mslrt::wait(mslrt::my_simdgroup().barrier); }

#define MSL_UNARY(name, fn)                         \
  inline float name(float x) { return std::fn(x); } \
  template <int N> mslvec<float, N> name(mslvec<float, N> v) { \
    for (int i = 0; i < N; i++) v[i] = std::fn(v[i]);          \
    return v;                                                   \
  }
MSL_UNARY(exp, exp)
MSL_UNARY(exp2, exp2)
MSL_UNARY(log, log)
MSL_UNARY(log2, log2)
MSL_UNARY(sqrt, sqrt)
MSL_UNARY(sin, sin)
MSL_UNARY(cos, cos)
MSL_UNARY(tanh, tanh)
MSL_UNARY(floor, floor)
MSL_UNARY(ceil, ceil)
MSL_UNARY(round, round)
MSL_UNARY(trunc, trunc)
MSL_UNARY(fabs, fabs)
MSL_UNARY(log1p, log1p)
#undef MSL_UNARY
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float pow(float x, float y) { return std::pow(x, y); }
inline float fma(float a, float b, float c) { return std::fma(a, b, c); }
inline float fmax(float a, float b) { return std::fmax(a, b); }
inline float fmin(float a, float b) { return std::fmin(a, b); }
inline bool isnan(float x) { return std::isnan(x); }
inline bool isinf(float x) { return std::isinf(x); }
inline bool isfinite(float x) { return std::isfinite(x); }
inline float abs(float x) { return std::fabs(x); }
inline int abs(int x) { return std::abs(x); }

template <class T> T max(T a, T b) { return a > b ? a : b; }
template <class T> T min(T a, T b) { return a < b ? a : b; }
inline float max(float a, float b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }
template <class T> T clamp(T x, T lo, T hi) { return min(max(x, lo), hi); }
template <class T> T select(T a, T b, bool c) { return c ? b : a; }
template <class T, int N> T dot(mslvec<T, N> a, mslvec<T, N> b) {
  T s = T(0);
  for (int i = 0; i < N; i++) s += a[i] * b[i];
  return s;
}

template <class To, class From> To as_type(From f) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs equal sizes");
  To t;
  std::memcpy(&t, &f, sizeof t);
  return t;
}

// fast:: and precise:: have the same functions; on the CPU both are precise.
namespace fast {
using metal::cos;
using metal::exp;
using metal::exp2;
using metal::log;
using metal::pow;
using metal::rsqrt;
using metal::sin;
using metal::sqrt;
using metal::tanh;
}  // namespace fast
namespace precise {
using metal::cos;
using metal::exp;
using metal::exp2;
using metal::log;
using metal::pow;
using metal::rsqrt;
using metal::sin;
using metal::sqrt;
using metal::tanh;
}  // namespace precise

template <class T> T simd_sum(T v) {
  return mslrt::simd_exchange(v, [](const T* x, uint n, uint) { T s = x[0]; for (uint i = 1; i < n; i++) s = T(s + x[i]); return s; });
}
template <class T> T simd_product(T v) {
  return mslrt::simd_exchange(v, [](const T* x, uint n, uint) { T s = x[0]; for (uint i = 1; i < n; i++) s = T(s * x[i]); return s; });
}
template <class T> T simd_max(T v) {
  return mslrt::simd_exchange(v, [](const T* x, uint n, uint) { T s = x[0]; for (uint i = 1; i < n; i++) s = max(s, x[i]); return s; });
}
template <class T> T simd_min(T v) {
  return mslrt::simd_exchange(v, [](const T* x, uint n, uint) { T s = x[0]; for (uint i = 1; i < n; i++) s = min(s, x[i]); return s; });
}
template <class T> T simd_prefix_exclusive_sum(T v) {
  return mslrt::simd_exchange(v, [](const T* x, uint, uint lane) { T s = T(0); for (uint i = 0; i < lane; i++) s = T(s + x[i]); return s; });
}
template <class T> T simd_prefix_inclusive_sum(T v) {
  return mslrt::simd_exchange(v, [](const T* x, uint, uint lane) { T s = x[0]; for (uint i = 1; i <= lane; i++) s = T(s + x[i]); return s; });
}
// Lanes whose source is outside the SIMD-group keep their own value.
template <class T> T simd_shuffle(T v, ushort lane) {
  return mslrt::simd_exchange(v, [lane](const T* x, uint n, uint me) { return lane < n ? x[lane] : x[me]; });
}
template <class T> T simd_broadcast(T v, ushort lane) { return simd_shuffle(v, lane); }
template <class T> T simd_broadcast_first(T v) { return simd_shuffle(v, 0); }
template <class T> T simd_shuffle_down(T v, ushort d) {
  return mslrt::simd_exchange(v, [d](const T* x, uint n, uint me) { return me + d < n ? x[me + d] : x[me]; });
}
template <class T> T simd_shuffle_up(T v, ushort d) {
  return mslrt::simd_exchange(v, [d](const T* x, uint, uint me) { return me >= d ? x[me - d] : x[me]; });
}
template <class T> T simd_shuffle_xor(T v, ushort m) {
  return mslrt::simd_exchange(v, [m](const T* x, uint n, uint me) { return (me ^ m) < n ? x[me ^ m] : x[me]; });
}
inline bool simd_all(bool b) {
  return mslrt::simd_exchange(b, [](const bool* x, uint n, uint) { for (uint i = 0; i < n; i++) if (!x[i]) return false; return true; });
}
inline bool simd_any(bool b) {
  return mslrt::simd_exchange(b, [](const bool* x, uint n, uint) { for (uint i = 0; i < n; i++) if (x[i]) return true; return false; });
}

// simdgroup_matrix<T, Cols, Rows>: Metal spreads the matrix over the lanes
// of a SIMD-group; here every lane holds all of it. The functions are
// SIMD-group collectives as in Metal: every lane of the SIMD-group must call
// them (a lane that does not deadlocks the others), load and store with the
// same address, row stride and transposition (a lane-dependent pointer is
// reported, as Metal leaves it undefined). A lane reads the source when it
// reaches simdgroup_load, so data that other lanes write just before needs
// a barrier, as on the GPU. Products accumulate in float in the order k =
// 0..K-1, starting from c.
template <class T, int Cols, int Rows> struct simdgroup_matrix {
  T e[Rows][Cols];
  simdgroup_matrix() = default;
  // Metal's constructor from a value makes a diagonal matrix.
  explicit simdgroup_matrix(T diag) {
    for (int r = 0; r < Rows; r++)
      for (int c = 0; c < Cols; c++) e[r][c] = r == c ? diag : T(0);
  }
};
typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int Cols, int Rows = Cols> simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T v) {
  simdgroup_matrix<T, Cols, Rows> m;
  for (int r = 0; r < Rows; r++)
    for (int c = 0; c < Cols; c++) m.e[r][c] = v;
  return m;
}
}  // namespace metal

namespace mslrt {
// simdgroup_access checks that every lane of the SIMD-group passes the same
// matrix address (p, with the origin folded in) and layout, and waits for
// all of them.
inline void simdgroup_access(const char* fn, uintptr_t p, unsigned long stride, bool transpose) {
  struct Access {
    uintptr_t p;
    unsigned long layout;
  };
  Access a = {p, stride << 1 | (transpose ? 1 : 0)};
  Access same = simd_exchange(a, [](const Access* x, uint n, uint) {
    for (uint i = 1; i < n; i++)
      if (x[i].p != x[0].p || x[i].layout != x[0].layout) return Access{0, 0};
    return Access{1, 0};
  });
  if (!same.p) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "%s: the lanes of a SIMD-group pass different addresses or layouts (Metal requires the same)", fn);
    fail(msg);
  }
}

// simdgroup_offset is where element (r, c) of a Rows x Cols matrix lies:
// row-major with stride elements per row from origin (x: column, y: row),
// or, transposed, the source holds the matrix's transpose.
inline unsigned long simdgroup_offset(int r, int c, unsigned long stride, ulong2 origin, bool transpose) {
  if (transpose) return (origin.y + c) * stride + origin.x + r;
  return (origin.y + r) * stride + origin.x + c;
}
}  // namespace mslrt

namespace metal {
template <class T, int Cols, int Rows, class P>
void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, P src, ulong elements_per_row = Cols,
                    ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  simdgroup_matrix<T, Cols, Rows> m;
  for (int r = 0; r < Rows; r++)
    for (int c = 0; c < Cols; c++)
      m.e[r][c] = T(src[mslrt::simdgroup_offset(r, c, elements_per_row, matrix_origin, transpose_matrix)]);
  mslrt::simdgroup_access("simdgroup_load", (uintptr_t)(src + mslrt::simdgroup_offset(0, 0, elements_per_row, matrix_origin, transpose_matrix)),
                          elements_per_row, transpose_matrix);
  d = m;
}

template <class T, int Cols, int Rows, class P>
void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, P dst, ulong elements_per_row = Cols,
                     ulong2 matrix_origin = ulong2(0), bool transpose_matrix = false) {
  mslrt::simdgroup_access("simdgroup_store", (uintptr_t)(dst + mslrt::simdgroup_offset(0, 0, elements_per_row, matrix_origin, transpose_matrix)),
                          elements_per_row, transpose_matrix);
  for (int r = 0; r < Rows; r++)
    for (int c = 0; c < Cols; c++)
      dst[mslrt::simdgroup_offset(r, c, elements_per_row, matrix_origin, transpose_matrix)] = a.e[r][c];
}

// d = a b + c, with a Rows x K and b K x Cols.
template <class T, int Cols, int Rows, int K>
void simdgroup_multiply_accumulate(simdgroup_matrix<T, Cols, Rows>& d, const simdgroup_matrix<T, K, Rows>& a,
                                   const simdgroup_matrix<T, Cols, K>& b, const simdgroup_matrix<T, Cols, Rows>& c) {
  simdgroup_matrix<T, Cols, Rows> m;
  for (int r = 0; r < Rows; r++)
    for (int j = 0; j < Cols; j++) {
      float s = float(c.e[r][j]);
      for (int k = 0; k < K; k++) s += float(a.e[r][k]) * float(b.e[k][j]);
      m.e[r][j] = T(s);
    }
  simdgroup_barrier(mem_flags::mem_none);
  d = m;
}

// d = a b.
template <class T, int Cols, int Rows, int K>
void simdgroup_multiply(simdgroup_matrix<T, Cols, Rows>& d, const simdgroup_matrix<T, K, Rows>& a,
                        const simdgroup_matrix<T, Cols, K>& b) {
  simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<T, Cols, Rows>(T(0)));
}
}  // namespace metal

// ---------------------------------------------------------------------------
// Metal keywords. Defined last so that nothing above is affected.

#ifdef MSL_ADDRESS_SPACE_CHECK
// Metal's address spaces as clang address spaces, so that mixing them up
// (a device pointer stored in a thread pointer, ...) is a compile error as it
// is in Metal.
#define device __attribute__((address_space(1)))
#define constant __attribute__((address_space(2)))
#define threadgroup static __attribute__((address_space(3)))
#define MSL_THREADGROUP_PARAM __attribute__((address_space(3)))
// Metal has no double: a shader that names it fails this check (an
// unknown type) rather than compiling for the CPU in double precision.
#define double msl_double_does_not_exist_in_Metal
#else
#define device
#define constant
#define threadgroup static __attribute__((section(MSL_TG_SECTION), used))
#define MSL_THREADGROUP_PARAM
#endif
#define thread
#ifdef MSL_SCAN
#define kernel __msl_kernel__
#else
#define kernel
#endif
