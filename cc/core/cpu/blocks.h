// What every CPU loop of the core is built from: the thread pool's cost
// model, software prefetch, and block-wise conversion of 16-bit storage to
// compute-type arrays that the compiler vectorises.
//
// Every CPU loop (cpu/min_max.h, cpu/qdq.h, cpu/fake_quant.h) takes raw
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

// Applies `fn(x, y, offset, m)` (BinaryBlocks: `fn(g, x, y, offset, m)`) to
// [first, first + count) in blocks of at most kBlock elements, as compute-type
// arrays: 16-bit storage is converted to and from them around each block.
// `offset` is the block's position within the run (for per-channel arrays).
// kPrefetch: fn sees sub-blocks of kPrefetchRun elements, each prefetched
// ahead (see PrefetchAhead).
template <bool kPrefetch = false, typename T, typename Fn, typename C = ComputeType<T>>
inline void UnaryBlocks(const T* in, T* out, int64_t first, int64_t count, Fn&& fn) {
  alignas(64) C in_buf[kBlock];
  alignas(64) C out_buf[kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t m = count - b < kBlock ? count - b : kBlock;
    const C* x = LoadBlock(in + first + b, m, in_buf);
    C* y = OutputBlock(out + first + b, out_buf);
    PrefetchedRuns<kPrefetch>(in + first + b, static_cast<const T*>(nullptr), m,
                              [&](int64_t s, int64_t ms) { fn(x + s, y + s, b + s, ms); });
    StoreBlock(y, m, out + first + b);
  }
}

template <bool kPrefetch = false, typename T, typename Fn, typename C = ComputeType<T>>
inline void BinaryBlocks(const T* in0, const T* in1, T* out, int64_t first,
                         int64_t count, Fn&& fn) {
  alignas(64) C in0_buf[kBlock];
  alignas(64) C in1_buf[kBlock];
  alignas(64) C out_buf[kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t m = count - b < kBlock ? count - b : kBlock;
    const C* g = LoadBlock(in0 + first + b, m, in0_buf);
    const C* x = LoadBlock(in1 + first + b, m, in1_buf);
    C* y = OutputBlock(out + first + b, out_buf);
    PrefetchedRuns<kPrefetch>(in0 + first + b, in1 + first + b, m, [&](int64_t s, int64_t ms) {
      fn(g + s, x + s, y + s, b + s, ms);
    });
    StoreBlock(y, m, out + first + b);
  }
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_BLOCKS_H_
