// runner.h: the process side of kernels/mslharness. A generated main.cpp
// includes this, the shader, and a table of its kernels; the process reads
// launches from stdin until it ends, runs each on the CPU, and writes its
// buffers back to stdout. One process serves many launches, as starting a
// process cost more than most launches; nothing of one launch survives into
// the next (fresh buffers, threadgroup memory poisoned, the thread order
// reseeded).
//
// stdin:  per launch "MSL2", u32 name length, name, u32 groups[3],
//         u32 threads[3], u64 seed, u64 threadgroup-memory offset and
//         length (the kernel's variables within the threadgroup section;
//         length ~0: the whole section), u32 buffer count, then per buffer
//         u32 index, u64 length, bytes.
// stdout: per launch u32 buffer count, then per buffer u32 index,
//         u64 length, bytes.
// All integers little-endian. Errors go to stderr with a non-zero exit.
#include <metal_stdlib>

namespace mslrt {

// What a kernel parameter is bound to (the [[...]] attribute).
enum What {
  kBuffer,
  kThreadPositionInGrid,
  kThreadgroupPositionInGrid,
  kThreadPositionInThreadgroup,
  kThreadsPerThreadgroup,
  kThreadgroupsPerGrid,
  kThreadsPerGrid,
  kThreadIndexInThreadgroup,
  kThreadIndexInSimdgroup,
  kSimdgroupIndexInThreadgroup,
  kThreadsPerSimdgroup,
  kSimdgroupsPerThreadgroup,
};

struct Binding {
  What what;
  int index;  // buffer index for kBuffer
};

enum { kMaxBuffers = 31 };

struct Launch {
  uint3 groups, threads;
  uint64_t seed = 0;
  void* ptr[kMaxBuffers] = {};
  size_t len[kMaxBuffers] = {};
  void* mapped[kMaxBuffers] = {};  // what guarded mapped, for unmapping
  size_t mapped_len[kMaxBuffers] = {};
  bool bound[kMaxBuffers] = {};
  const Binding* bindings = nullptr;

  void* buffer(int i, size_t need) const {
    if (i < 0 || i >= kMaxBuffers || !bound[i]) {
      std::fprintf(stderr, "buffer(%d) is not bound\n", i);
      std::exit(2);
    }
    if (len[i] < need) {
      std::fprintf(stderr, "buffer(%d) has %zu bytes, the kernel reads a %zu-byte value\n", i, len[i], need);
      std::exit(2);
    }
    return ptr[i];
  }
};

inline uint3 position(const ThreadCtx& t, What w) {
  switch (w) {
    case kThreadPositionInGrid: return t.thread_position_in_grid;
    case kThreadgroupPositionInGrid: return t.threadgroup_position_in_grid;
    case kThreadPositionInThreadgroup: return t.thread_position_in_threadgroup;
    case kThreadsPerThreadgroup: return t.threads_per_threadgroup;
    case kThreadgroupsPerGrid: return t.threadgroups_per_grid;
    case kThreadsPerGrid: return t.threads_per_grid;
    case kThreadIndexInThreadgroup: return uint3(t.thread_index_in_threadgroup, 0, 0);
    case kThreadIndexInSimdgroup: return uint3(t.thread_index_in_simdgroup, 0, 0);
    case kSimdgroupIndexInThreadgroup: return uint3(t.simdgroup_index_in_threadgroup, 0, 0);
    case kThreadsPerSimdgroup: return uint3(t.threads_per_simdgroup, 0, 0);
    case kSimdgroupsPerThreadgroup: return uint3(t.simdgroups_per_threadgroup, 0, 0);
    case kBuffer: break;
  }
  std::fprintf(stderr, "bad binding\n");
  std::exit(2);
}

template <class P> struct is_vec : std::false_type {};
template <class T, int N> struct is_vec<mslvec<T, N>> : std::true_type {};

template <class P> P arg(const ThreadCtx& t, const Launch& l, Binding b) {
  if constexpr (std::is_pointer_v<P>) {
    return reinterpret_cast<P>(l.buffer(b.index, 0));
  } else if constexpr (std::is_reference_v<P>) {
    using V = std::remove_reference_t<P>;
    return *reinterpret_cast<V*>(l.buffer(b.index, sizeof(V)));
  } else if constexpr (is_vec<P>::value) {
    uint3 v = position(t, b.what);
    P p;
    for (int i = 0; i < int(sizeof(P) / sizeof(p[0])); i++) p[i] = std::remove_reference_t<decltype(p[0])>(v[i]);
    return p;
  } else {
    return P(position(t, b.what).x);
  }
}

template <class... P, size_t... I>
void call(void (*fn)(P...), const ThreadCtx& t, const Launch& l, std::index_sequence<I...>) {
  fn(arg<P>(t, l, l.bindings[I])...);
}

// Entry is one launchable kernel: its host name, bindings and trampoline.
struct Entry {
  const char* name;
  const Binding* bindings;
  int nparams;
  void (*run)(const ThreadCtx&, void*);
};

template <class... P> constexpr int arity(void (*)(P...)) { return sizeof...(P); }

// Trampoline adapts a kernel function to the runtime's body signature.
template <auto Fn> void trampoline(const ThreadCtx& t, void* l) {
  call(Fn, t, *static_cast<const Launch*>(l), std::make_index_sequence<arity(Fn)>{});
}

inline void read_exact(void* p, size_t n) {
  if (n && std::fread(p, 1, n, stdin) != n) {
    std::fprintf(stderr, "launch input is truncated\n");
    std::exit(2);
  }
}
template <class T> T read_le() {
  T v;
  read_exact(&v, sizeof v);
  return v;
}

// guarded returns n bytes that end right below an inaccessible page, so
// reading or writing past the end of a buffer faults. *map and *map_len
// receive the mapping to unmap.
inline void* guarded(size_t n, void** map, size_t* map_len) {
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t pages = (n + page - 1) / page;
  char* base = static_cast<char*>(mmap(nullptr, (pages + 1) * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) {
    std::fprintf(stderr, "mmap of %zu bytes failed\n", n);
    std::exit(2);
  }
  mprotect(base + pages * page, page, PROT_NONE);
  *map = base;
  *map_len = (pages + 1) * page;
  return base + ((pages * page - n) & ~size_t(15));
}

// run_one reads one launch, runs it and writes its buffers back; it
// returns false when stdin ends before a launch starts.
inline bool run_one(const Entry* entries, int n) {
  char magic[4];
  size_t got = std::fread(magic, 1, 4, stdin);
  if (got == 0 && std::feof(stdin)) return false;
  if (got != 4 || std::memcmp(magic, "MSL2", 4) != 0) {
    std::fprintf(stderr, "launch input does not start with MSL2\n");
    std::exit(2);
  }
  std::vector<char> name(read_le<uint32_t>() + 1, 0);
  read_exact(name.data(), name.size() - 1);
  Launch l;
  for (int i = 0; i < 3; i++) l.groups[i] = read_le<uint32_t>();
  for (int i = 0; i < 3; i++) l.threads[i] = read_le<uint32_t>();
  l.seed = read_le<uint64_t>();
  uint64_t tg_off = read_le<uint64_t>(), tg_len = read_le<uint64_t>();
  char *tg_lo = __start_msl_threadgroup, *tg_hi = __stop_msl_threadgroup;
  size_t section = tg_lo && tg_hi > tg_lo ? size_t(tg_hi - tg_lo) : 0;
  if (tg_len == ~uint64_t(0)) {
    tg_off = 0, tg_len = section;
  } else if (tg_off > section || tg_len > section - tg_off) {
    std::fprintf(stderr, "threadgroup memory [%llu, +%llu) is outside the %zu-byte section\n", (unsigned long long)tg_off,
                 (unsigned long long)tg_len, section);
    std::exit(2);
  }
  uint32_t nbuf = read_le<uint32_t>();
  std::vector<int> order;
  for (uint32_t b = 0; b < nbuf; b++) {
    uint32_t idx = read_le<uint32_t>();
    uint64_t len = read_le<uint64_t>();
    if (idx >= kMaxBuffers || l.bound[idx]) {
      std::fprintf(stderr, "buffer index %u is out of range or given twice\n", idx);
      std::exit(2);
    }
    l.ptr[idx] = guarded(len, &l.mapped[idx], &l.mapped_len[idx]);
    l.len[idx] = len;
    l.bound[idx] = true;
    read_exact(l.ptr[idx], len);
    order.push_back(int(idx));
  }
  const Entry* e = nullptr;
  for (int i = 0; i < n; i++)
    if (std::strcmp(entries[i].name, name.data()) == 0) e = &entries[i];
  if (!e) {
    std::fprintf(stderr, "no kernel named %s in this shader file\n", name.data());
    std::exit(2);
  }
  l.bindings = e->bindings;
  for (int i = 0; i < e->nparams; i++)
    if (e->bindings[i].what == kBuffer) l.buffer(e->bindings[i].index, 0);
  dispatch(e->name, l.groups, l.threads, l.seed, e->run, &l, tg_len ? tg_lo + tg_off : nullptr, size_t(tg_len));
  uint32_t count = uint32_t(order.size());
  std::fwrite(&count, 4, 1, stdout);
  for (int idx : order) {
    uint32_t i32 = uint32_t(idx);
    uint64_t len = l.len[idx];
    std::fwrite(&i32, 4, 1, stdout);
    std::fwrite(&len, 8, 1, stdout);
    std::fwrite(l.ptr[idx], 1, len, stdout);
    munmap(l.mapped[idx], l.mapped_len[idx]);
  }
  if (std::fflush(stdout) != 0) std::exit(2);
  return true;
}

inline int run_main(const Entry* entries, int n) {
  while (run_one(entries, n)) {
  }
  return 0;
}
}  // namespace mslrt
