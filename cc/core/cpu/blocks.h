// What every CPU loop of the core is built from: the thread pool's cost
// model, software prefetch, and block-wise conversion of 16-bit storage to
// compute-type arrays that the compiler vectorises.
//
// Every CPU loop (cpu/min_max.h, cpu/qdq.h, cpu/fake_quant*.h) takes raw
// pointers, a ChannelView, a caller-provided Workspace and a ParallelFor: any
// callable `pfor(units, cost_per_unit, fn)` that calls `fn(begin, end)` over
// disjoint sub-ranges covering [0, units) (TF's thread pool in the op library,
// a serial loop in the core module). Results never depend on how pfor splits
// the work.
//
// Speed: one pass over the data per output (plus one for a data-derived QDQ
// range). Inner loops run over plain arrays of the compute type so the
// compiler vectorises them: 16-bit types are converted block by block
// (kBlock elements, in L1) with F16C where the CPU has it, and per-channel
// constants are laid out as structures of arrays.
#ifndef TF_QDQ_CC_CORE_CPU_BLOCKS_H_
#define TF_QDQ_CC_CORE_CPU_BLOCKS_H_

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cc/core/convert_block.h"
#include "cc/core/numeric.h"

namespace tf_qdq {
namespace core {

// Rough cycles per element, for the thread pool's cost model.
constexpr int64_t kElementwiseCost = 4;

// Software prefetch for the per-channel loops. Measured at 16M float32 values
// (DRAM): a loop that reads several per-channel constant arrays besides its
// input ran at 1.5-2x a copy's time with the hardware prefetchers alone (the
// same arithmetic with the constants in registers ran at a copy's speed).
// Hinting the input kPrefetchBytes ahead, one line at a time, kPrefetchRun
// elements before they are used, brings it to within ~10% of a copy.
// Prefetching a whole 1024-element block at once helped less, and the
// per-tensor loops, which the hardware prefetchers already serve, got slower
// with it: they do not prefetch. A prefetch never faults, so hints past the
// end are harmless.
constexpr int64_t kPrefetchBytes = 4096;
constexpr int64_t kPrefetchRun = 256;
template <typename T>
QDQ_INLINE void PrefetchAhead(const T* p, int64_t count) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = reinterpret_cast<const char*>(p) + kPrefetchBytes;
  const int64_t bytes = count * static_cast<int64_t>(sizeof(T));
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
#else
  (void)p;
  (void)count;
#endif
}

// Calls fn(offset, m) over [0, count) in runs of kPrefetchRun elements,
// prefetching each run's inputs ahead first (kPrefetch), or once.
template <bool kPrefetch, typename T, typename Fn>
QDQ_INLINE void PrefetchedRuns(const T* in0, const T* in1, int64_t count, Fn&& fn) {
  if (!kPrefetch) {
    fn(int64_t{0}, count);
    return;
  }
  for (int64_t s = 0; s < count; s += kPrefetchRun) {
    const int64_t m = count - s < kPrefetchRun ? count - s : kPrefetchRun;
    PrefetchAhead(in0 + s, m);
    if (in1 != nullptr) PrefetchAhead(in1 + s, m);
    fn(s, m);
  }
}

// ---- Streaming stores ---------------------------------------------------------------
// An output larger than the last-level cache is written around it: a normal
// store first reads the line it writes (one extra DRAM read per output
// line), a streaming store does not. Measured at 16M float32 values, where
// the loops are at the DRAM bound, this removes a third of a one-pass loop's
// traffic. Below kStreamMinBytes the output stays in cache for its consumer.
// The stored values are the same; the fence at the end of each parallel body
// orders the streaming stores before the pool reports the work done.
constexpr int64_t kStreamMinBytes = int64_t{16} << 20;

// TF_QDQ_NO_STREAM=1 in the environment turns them off (A/B timing).
inline bool StreamingAllowed() {
  static const bool allowed = std::getenv("TF_QDQ_NO_STREAM") == nullptr;
  return allowed;
}

// ---- Outputs the allocator has just mapped ---------------------------------------
// glibc maps every block above its mmap threshold (at most 32 MB) afresh and
// unmaps it on free, so where TF's allocator does not keep the block, a 16M
// float output is new memory on every call, eager or graph: each of its 4 KB
// pages faults on the first store into it. Measured on an AMD EPYC (Zen 3)
// VM whose graph-mode outputs faulted on every call (1.2 million minor faults
// in 70 calls): the faults, not the DRAM, set the time there, TF's `x + 1`
// took 25 ms at 16M where the same loop into a reused buffer takes 5 ms, and
// streaming stores made it worse (1.11x TF's time for the per-tensor ops,
// 1.00x with normal stores; the kernel has just zeroed each page, likely into
// the cache, where a normal store hits and a streaming one must evict).
// So such an output is first mapped in by one madvise(MADV_POPULATE_WRITE)
// per thread's share of its pages (Linux 5.14 and later), which does the same
// page allocation and zeroing without a fault per page: in a harness on that
// VM, 16M values, two threads, 28.7 -> 22 ms, and then streaming helps again
// (22.3 -> 21.2 ms). A kernel without it refuses the call and the stores
// fault the pages in as before. The contents are not touched: the output is
// written in full afterwards either way.

#if defined(__linux__)
inline uintptr_t PageBytes() {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return page;
}
#endif

// Whether out[0, bytes) is mapped in, sampled at four pages past the first
// (which the allocator's own block header may have touched). mincore() is one
// system call per sample, some microseconds against a 16 MB output's
// milliseconds. Where it cannot tell, the answer is yes.
inline bool OutputMappedIn(const void* out, int64_t bytes) {
#if defined(__linux__)
  const uintptr_t page = PageBytes();
  const uintptr_t first = reinterpret_cast<uintptr_t>(out);
  for (int64_t k = 1; k <= 4; ++k) {
    const uintptr_t at = (first + static_cast<uintptr_t>((bytes - 1) / 4 * k)) & ~(page - 1);
    unsigned char resident = 0;
    if (mincore(reinterpret_cast<void*>(at), page, &resident) != 0) return true;
    if ((resident & 1) == 0) return false;
  }
#else
  (void)out;
  (void)bytes;
#endif
  return true;
}

// Rough cycles to map in one page, for the thread pool's cost model.
constexpr int64_t kPageMapCost = 4096;

// Readies an op's output of `elements` values before its parallel loop and
// says whether the loop streams it (float only: see BlockOutput). Outputs
// below kStreamMinBytes are left alone.
template <typename T, typename ParallelFor>
bool PrepareOutput(T* out, int64_t elements, ParallelFor&& pfor) {
  const int64_t bytes = static_cast<int64_t>(sizeof(T)) * elements;
  if (bytes < kStreamMinBytes) return false;
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  if (!OutputMappedIn(out, bytes)) {
    // Only the pages wholly inside the output: the partial ones at its ends
    // may hold other tensors (populating them would be harmless, but is not
    // ours to do).
    const uintptr_t page = PageBytes();
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(out) + page - 1) & ~(page - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(out) + bytes) & ~(page - 1);
    if (end > begin) {
      pfor(static_cast<int64_t>((end - begin) / page), kPageMapCost, [&](int64_t p0, int64_t p1) {
        madvise(reinterpret_cast<void*>(begin + p0 * page), (p1 - p0) * page,
                MADV_POPULATE_WRITE);
      });
    }
  }
#endif
  return StreamingAllowed();
}

// out[0, m) = buf[0, m), streaming where `out` is 32-byte aligned.
QDQ_INLINE void StreamStore(const float* __restrict buf, float* __restrict out, int64_t m) {
  int64_t j = 0;
#if defined(TF_QDQ_X86_HOST) && defined(__AVX__)
  for (; j < m && (reinterpret_cast<uintptr_t>(out + j) & 31) != 0; ++j) out[j] = buf[j];
  for (; j + 8 <= m; j += 8) _mm256_stream_ps(out + j, _mm256_loadu_ps(buf + j));
#elif defined(TF_QDQ_X86_HOST)  // a build without -mavx: SSE streaming stores
  for (; j < m && (reinterpret_cast<uintptr_t>(out + j) & 15) != 0; ++j) out[j] = buf[j];
  for (; j + 4 <= m; j += 4) _mm_stream_ps(out + j, _mm_loadu_ps(buf + j));
#endif
  for (; j < m; ++j) out[j] = buf[j];
}

QDQ_INLINE void StreamFence() {
#ifdef TF_QDQ_X86_HOST
  _mm_sfence();
#endif
}

// ---- The wide-vector clone --------------------------------------------------------
// The compute-heavy float loops (the per-channel FakeQuant ones) are compiled
// twice: for the build's ISA (AVX) and, behind a run-time check, for AVX-512.
// Both run the same C++ (one template body): the same IEEE operations per
// element, in vectors twice as wide, so the same bits. `flatten` inlines the
// whole body, lambdas included, into the AVX-512 function so that all of it is
// vectorised for that ISA. TF_QDQ_NO_AVX512=1 in the environment forces the
// AVX path (for tests and A/B timing).
#if defined(TF_QDQ_X86_HOST) && defined(__x86_64__) && defined(__GNUC__)
#define TF_QDQ_HAVE_WIDE_PATH 1
#if defined(__clang__)
#define TF_QDQ_WIDE_FN __attribute__((target("avx2,avx512f,avx512vl,avx512dq"), flatten))
#else
#define TF_QDQ_WIDE_FN \
  __attribute__((target("avx2,avx512f,avx512vl,avx512dq,prefer-vector-width=512"), flatten))
#endif
inline bool CpuHasWideVectors() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           std::getenv("TF_QDQ_NO_AVX512") == nullptr;
  }();
  return has;
}
#endif

// Applies `fn(x, y, offset, m)` (BinaryBlocks: `fn(g, x, y, offset, m)`) to
// [first, first + count) in blocks of at most kBlock elements, as compute-type
// arrays: 16-bit storage is converted to and from them around each block.
// `offset` is the block's position within the run (for per-channel arrays).
// kPrefetch: fn sees sub-blocks of kPrefetchRun elements, each prefetched
// ahead (see PrefetchAhead).
// `stream` (float only: see PrepareOutput): the block is computed into an L1
// buffer and streamed out; the caller fences (StreamFence) before its
// parallel body returns.
template <typename T, typename C>
QDQ_INLINE C* BlockOutput(T* out, C* buffer, bool stream) {
  if constexpr (std::is_same<T, float>::value) {
    if (stream) return buffer;
  }
  return OutputBlock(out, buffer);
}
template <typename T, typename C>
QDQ_INLINE void FinishBlock(const C* y, int64_t m, T* out, bool stream) {
  if constexpr (std::is_same<T, float>::value) {
    if (stream) return StreamStore(y, out, m);
  }
  StoreBlock(y, m, out);
}

template <bool kPrefetch = false, typename T, typename Fn, typename C = ComputeType<T>>
inline void UnaryBlocks(const T* in, T* out, int64_t first, int64_t count, Fn&& fn,
                        bool stream = false) {
  alignas(64) C in_buf[kBlock];
  alignas(64) C out_buf[kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t m = count - b < kBlock ? count - b : kBlock;
    const C* x = LoadBlock(in + first + b, m, in_buf);
    C* y = BlockOutput(out + first + b, out_buf, stream);
    PrefetchedRuns<kPrefetch>(in + first + b, static_cast<const T*>(nullptr), m,
                              [&](int64_t s, int64_t ms) { fn(x + s, y + s, b + s, ms); });
    FinishBlock(y, m, out + first + b, stream);
  }
}

template <bool kPrefetch = false, typename T, typename Fn, typename C = ComputeType<T>>
inline void BinaryBlocks(const T* in0, const T* in1, T* out, int64_t first,
                         int64_t count, Fn&& fn, bool stream = false) {
  alignas(64) C in0_buf[kBlock];
  alignas(64) C in1_buf[kBlock];
  alignas(64) C out_buf[kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t m = count - b < kBlock ? count - b : kBlock;
    const C* g = LoadBlock(in0 + first + b, m, in0_buf);
    const C* x = LoadBlock(in1 + first + b, m, in1_buf);
    C* y = BlockOutput(out + first + b, out_buf, stream);
    PrefetchedRuns<kPrefetch>(in0 + first + b, in1 + first + b, m, [&](int64_t s, int64_t ms) {
      fn(g + s, x + s, y + s, b + s, ms);
    });
    FinishBlock(y, m, out + first + b, stream);
  }
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_BLOCKS_H_
