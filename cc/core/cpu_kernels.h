// CPU implementations of every tf-qdq op, framework-free.
//
// Each function takes raw pointers, a ChannelView, a caller-provided Workspace
// and a ParallelFor: any callable `pfor(units, cost_per_unit, fn)` that calls
// `fn(begin, end)` over disjoint sub-ranges covering [0, units) (TF's thread
// pool in the op library, a serial loop in the core module). Results never
// depend on how pfor splits the work.
//
// Speed: one pass over the data per output (plus one for a data-derived QDQ
// range). Inner loops run over plain arrays of the compute type so the
// compiler vectorises them: 16-bit types are converted block by block
// (kBlock elements, in L1) with F16C where the CPU has it, and per-channel
// constants are laid out as structures of arrays.
#ifndef TF_QDQ_CC_CORE_CPU_KERNELS_H_
#define TF_QDQ_CC_CORE_CPU_KERNELS_H_

#include <cstdint>
#include <type_traits>

#include "cc/core/convert_block.h"
#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

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

// ---------------------------------------------------------------------------
// Min/max of each channel, NaNs skipped.
//
// The inner loops use plain compares (vectorisable; a zero found first wins).
// The sign of a zero minimum never changes a QDQ output; that of a zero
// maximum can (unsigned, all data <= 0), so a channel whose maximum is zero
// gets the order-independent rule of RunningMax: +0 if any +0 is present.
// ---------------------------------------------------------------------------

template <typename C>
inline void RunMinMax(const C* __restrict x, int64_t count, C* min_out, C* max_out) {
  constexpr int kLanes = 16;
  C mn[kLanes], mx[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    mn[j] = Infinity<C>();
    mx[j] = -Infinity<C>();
  }
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const C v = x[i + j];
      mn[j] = v < mn[j] ? v : mn[j];
      mx[j] = mx[j] < v ? v : mx[j];
    }
  }
  for (; i < count; ++i) {
    mn[0] = x[i] < mn[0] ? x[i] : mn[0];
    mx[0] = mx[0] < x[i] ? x[i] : mx[0];
  }
  C a = *min_out, b = *max_out;
  for (int j = 0; j < kLanes; ++j) {
    a = RunningMin(a, mn[j]);
    b = RunningMax(b, mx[j]);
  }
  *min_out = a;
  *max_out = b;
}

#ifdef __AVX__
// GCC does not vectorise the select form above. vminps(v, acc) is exactly
// `v < acc ? v : acc` (acc when v is NaN or equal), likewise vmaxps.
template <>
inline void RunMinMax<float>(const float* __restrict x, int64_t count, float* min_out,
                             float* max_out) {
  __m256 mn0 = _mm256_set1_ps(Infinity<float>()), mn1 = mn0;
  __m256 mx0 = _mm256_set1_ps(-Infinity<float>()), mx1 = mx0;
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    mn0 = _mm256_min_ps(v0, mn0);
    mn1 = _mm256_min_ps(v1, mn1);
    mx0 = _mm256_max_ps(v0, mx0);
    mx1 = _mm256_max_ps(v1, mx1);
  }
  alignas(32) float lanes[32];
  _mm256_store_ps(lanes, mn0);
  _mm256_store_ps(lanes + 8, mn1);
  _mm256_store_ps(lanes + 16, mx0);
  _mm256_store_ps(lanes + 24, mx1);
  float a = *min_out, b = *max_out;
  for (int j = 0; j < 16; ++j) {
    a = RunningMin(a, lanes[j]);
    b = RunningMax(b, lanes[16 + j]);
  }
  for (; i < count; ++i) {
    a = RunningMin(a, x[i]);
    b = RunningMax(b, x[i]);
  }
  *min_out = a;
  *max_out = b;
}
#endif

template <typename T, typename C = ComputeType<T>>
inline void RunMinMaxStored(const T* x, int64_t count, C* min_out, C* max_out) {
  alignas(64) C buf[kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t m = count - b < kBlock ? count - b : kBlock;
    RunMinMax(LoadBlock(x + b, m, buf), m, min_out, max_out);
  }
}

// Does channel c contain a +0? (Only asked when its maximum is zero.)
template <typename T>
inline bool ChannelHasPositiveZero(const T* x, const ChannelView& v, int64_t c) {
  for (int64_t o = 0; o < v.outer; ++o) {
    const T* row = x + (o * v.depth + c) * v.inner;
    for (int64_t k = 0; k < v.inner; ++k) {
      const ComputeType<T> value = ToCompute(row[k]);
      if (value == 0 && !std::signbit(value)) return true;
    }
  }
  return false;
}

constexpr int64_t kLongChannelRun = 64;
constexpr int64_t kMinMaxBlockElements = 1 << 16;
constexpr int64_t kMaxMinMaxBlocks = 32;

inline int64_t MinMaxRowsPerBlock(const ChannelView& v) {
  const int64_t row = v.depth * v.inner;
  int64_t rows = CeilDiv(kMinMaxBlockElements, row > 0 ? row : 1);
  if (CeilDiv(v.outer, rows) > kMaxMinMaxBlocks) rows = CeilDiv(v.outer, kMaxMinMaxBlocks);
  return rows > 0 ? rows : 1;
}

inline bool MinMaxPerChannelTask(const ChannelView& v) {
  return v.depth > 1 && v.inner >= kLongChannelRun;
}

template <typename C, typename WS>
inline void TakeMinMaxScratch(const ChannelView& v, WS& ws, C** partial_min,
                              C** partial_max) {
  *partial_min = *partial_max = nullptr;
  if (MinMaxPerChannelTask(v)) return;
  const int64_t blocks = v.depth == 1 ? CeilDiv(v.size(), kMinMaxBlockElements)
                                      : CeilDiv(v.outer, MinMaxRowsPerBlock(v)) * v.depth;
  *partial_min = ws.template Take<C>(blocks);
  *partial_max = ws.template Take<C>(blocks);
}

template <typename T, typename ParallelFor, typename C = ComputeType<T>>
void ChannelMinMax(const T* x, const ChannelView& v, C* mins, C* maxs, C* partial_min,
                   C* partial_max, ParallelFor&& pfor) {
  const C kInf = Infinity<C>();
  if (v.depth == 1) {  // per tensor: flat blocks
    const int64_t n = v.size();
    const int64_t blocks = CeilDiv(n, kMinMaxBlockElements);
    pfor(blocks, kMinMaxBlockElements, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t first = b * kMinMaxBlockElements;
        const int64_t count =
            n - first < kMinMaxBlockElements ? n - first : kMinMaxBlockElements;
        partial_min[b] = kInf;
        partial_max[b] = -kInf;
        RunMinMaxStored(x + first, count, &partial_min[b], &partial_max[b]);
      }
    });
    C mn = kInf, mx = -kInf;
    for (int64_t b = 0; b < blocks; ++b) {
      mn = RunningMin(mn, partial_min[b]);
      mx = RunningMax(mx, partial_max[b]);
    }
    mins[0] = mn;
    maxs[0] = mx;
  } else if (MinMaxPerChannelTask(v)) {  // long contiguous runs: a task per channel
    pfor(v.depth, v.outer * v.inner, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        C mn = kInf, mx = -kInf;
        for (int64_t o = 0; o < v.outer; ++o) {
          RunMinMaxStored(x + (o * v.depth + c) * v.inner, v.inner, &mn, &mx);
        }
        mins[c] = mn;
        maxs[c] = mx;
      }
    });
  } else {  // short runs: blocks of rows with partial min/max per channel
    const int64_t rows_per_block = MinMaxRowsPerBlock(v);
    const int64_t blocks = CeilDiv(v.outer, rows_per_block);
    const int64_t row = v.depth * v.inner;
    pfor(blocks, rows_per_block * row, [&](int64_t b0, int64_t b1) {
      alignas(64) C buf[kBlock];
      for (int64_t b = b0; b < b1; ++b) {
        C* __restrict pmin = partial_min + b * v.depth;
        C* __restrict pmax = partial_max + b * v.depth;
        for (int64_t c = 0; c < v.depth; ++c) {
          pmin[c] = kInf;
          pmax[c] = -kInf;
        }
        const int64_t o_end =
            (b + 1) * rows_per_block < v.outer ? (b + 1) * rows_per_block : v.outer;
        ForEachChannelRun(
            v, b * rows_per_block * row, o_end * row,
            [&](int64_t c, int64_t first, int64_t count) {
              RunMinMaxStored(x + first, count, &pmin[c], &pmax[c]);
            },
            [&](int64_t c0, int64_t first, int64_t count) {
              for (int64_t s = 0; s < count; s += kBlock) {
                const int64_t m = count - s < kBlock ? count - s : kBlock;
                const C* __restrict val = LoadBlock(x + first + s, m, buf);
                C* __restrict lo = pmin + c0 + s;
                C* __restrict hi = pmax + c0 + s;
                for (int64_t j = 0; j < m; ++j) {
                  lo[j] = val[j] < lo[j] ? val[j] : lo[j];
                  hi[j] = hi[j] < val[j] ? val[j] : hi[j];
                }
              }
            });
      }
    });
    pfor(v.depth, blocks, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        C mn = kInf, mx = -kInf;
        for (int64_t b = 0; b < blocks; ++b) {
          mn = RunningMin(mn, partial_min[b * v.depth + c]);
          mx = RunningMax(mx, partial_max[b * v.depth + c]);
        }
        mins[c] = mn;
        maxs[c] = mx;
      }
    });
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    if (maxs[c] == 0) maxs[c] = ChannelHasPositiveZero(x, v, c) ? C(0) : -C(0);
  }
}

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV4 (V2, V3 share it)
// ---------------------------------------------------------------------------

// Per-channel scales as structures of arrays, for the inner == 1 loops.
template <typename C>
struct QdqScaleArrays {
  C* scale;
  C* inverse_scale;
  C* min_range;
  C* max_range;
};

template <typename T, typename WS, typename C = ComputeType<T>>
inline void TakeQdqForwardScratch(const ChannelView& v, bool range_given, WS& ws,
                                  C** mins, C** maxs, QdqScaleArrays<C>* scales,
                                  C** partial_min, C** partial_max) {
  *mins = ws.template Take<C>(v.depth);
  *maxs = ws.template Take<C>(v.depth);
  scales->scale = ws.template Take<C>(v.depth);
  scales->inverse_scale = ws.template Take<C>(v.depth);
  scales->min_range = ws.template Take<C>(v.depth);
  scales->max_range = ws.template Take<C>(v.depth);
  *partial_min = *partial_max = nullptr;
  if (!range_given) TakeMinMaxScratch<C>(v, ws, partial_min, partial_max);
}

template <typename T>
size_t QdqForwardWorkspaceBytes(const ChannelView& v, bool range_given) {
  using C = ComputeType<T>;
  if (v.size() == 0) return 0;  // nothing to do, whatever the depth
  WorkspaceMeter meter;
  C *a, *b, *c, *d;
  QdqScaleArrays<C> s;
  TakeQdqForwardScratch<T>(v, range_given, meter, &a, &b, &s, &c, &d);
  return meter.used();
}

template <typename T, typename ParallelFor>
void QdqForwardCpu(const QdqForwardArgs<T>& args, Workspace& ws, ParallelFor&& pfor) {
  ScopedFlushDenormals flush;  // as TF's CPU kernels; pfor bodies set it too
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  if (v.size() == 0) return;
  C *mins, *maxs, *partial_min, *partial_max;
  QdqScaleArrays<C> sa;
  TakeQdqForwardScratch<T>(v, args.range_given, ws, &mins, &maxs, &sa, &partial_min,
                           &partial_max);
  if (args.range_given) {
    for (int64_t c = 0; c < v.depth; ++c) {
      mins[c] = ToCompute(args.input_min[c]);
      maxs[c] = ToCompute(args.input_max[c]);
    }
  } else {
    ChannelMinMax(args.input, v, mins, maxs, partial_min, partial_max, pfor);
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    const QdqScale<C> s = ComputeQdqScale(args.bounds, mins[c], maxs[c]);
    sa.scale[c] = s.scale;
    sa.inverse_scale[c] = s.inverse_scale;
    sa.min_range[c] = s.min_range;
    sa.max_range[c] = s.max_range;
  }
  DispatchQdqVariant(args.round_mode, args.range_given, [&](auto mode, auto clamp) {
    constexpr RoundMode kMode = decltype(mode)::value;
    constexpr bool kClamp = decltype(clamp)::value;
    pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
      ForEachChannelRun(
          v, begin, end,
          [&](int64_t c, int64_t first, int64_t count) {
            const QdqScale<C> s{sa.scale[c], sa.inverse_scale[c], sa.min_range[c],
                                sa.max_range[c]};
            UnaryBlocks(args.input, args.output, first, count,
                        [&](const C* __restrict x, C* __restrict y, int64_t, int64_t m) {
                          for (int64_t j = 0; j < m; ++j) {
                            y[j] = QuantizeDequantize<kMode, kClamp>(x[j], s);
                          }
                        });
          },
          [&](int64_t c0, int64_t first, int64_t count) {
            UnaryBlocks<true>(args.input, args.output, first, count,
                        [&](const C* __restrict x, C* __restrict y, int64_t b, int64_t m) {
                          const C* __restrict scale = sa.scale + c0 + b;
                          const C* __restrict inv = sa.inverse_scale + c0 + b;
                          const C* __restrict lo = sa.min_range + c0 + b;
                          const C* __restrict hi = sa.max_range + c0 + b;
                          for (int64_t j = 0; j < m; ++j) {
                            y[j] = QuantizeDequantize<kMode, kClamp>(
                                x[j], QdqScale<C>{scale[j], inv[j], lo[j], hi[j]});
                          }
                        });
          });
    });
  });
}

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV4Grad: input_backprop = gradients * [min <= x <= max]
// ---------------------------------------------------------------------------

template <typename T>
size_t QdqGradientWorkspaceBytes(const ChannelView& v) {
  if (v.size() == 0) return 0;  // only the range backprops: zeros
  WorkspaceMeter meter;
  meter.Take<ComputeType<T>>(2 * v.depth);
  return meter.used();
}

template <typename T, typename ParallelFor>
void QdqGradientCpu(const QdqGradientArgs<T>& args, Workspace& ws, ParallelFor&& pfor) {
  ScopedFlushDenormals flush;  // as TF's CPU kernels; pfor bodies set it too
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  for (int64_t c = 0; c < args.range_size; ++c) {
    args.input_min_backprop[c] = args.input_max_backprop[c] = StoreAs<T>(C(0));
  }
  if (v.size() == 0) return;
  C* lo = ws.Take<C>(v.depth);
  C* hi = ws.Take<C>(v.depth);
  for (int64_t c = 0; c < v.depth; ++c) {
    lo[c] = ToCompute(args.input_min[c]);
    hi[c] = ToCompute(args.input_max[c]);
  }
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const C min = lo[c], max = hi[c];
          BinaryBlocks(args.gradients, args.input, args.input_backprop, first, count,
                       [&](const C* __restrict g, const C* __restrict x, C* __restrict y,
                           int64_t, int64_t m) {
                         for (int64_t j = 0; j < m; ++j) y[j] = QdqGradient(g[j], x[j], min, max);
                       });
        },
        [&](int64_t c0, int64_t first, int64_t count) {
          BinaryBlocks<true>(args.gradients, args.input, args.input_backprop, first, count,
                       [&](const C* __restrict g, const C* __restrict x, C* __restrict y,
                           int64_t b, int64_t m) {
                         const C* __restrict min = lo + c0 + b;
                         const C* __restrict max = hi + c0 + b;
                         for (int64_t j = 0; j < m; ++j) {
                           y[j] = QdqGradient(g[j], x[j], min[j], max[j]);
                         }
                       });
        });
  });
}

// ---------------------------------------------------------------------------
// FakeQuantWithMinMax{Args,Vars,VarsPerChannel}
// ---------------------------------------------------------------------------

// Nudged ranges per channel, as structures of arrays. `zero` is 1 where a
// min == max == 0 channel outputs zeros (Vars/PerChannel forward) or passes
// the gradient through (their gradients).
template <typename C>
struct NudgedArrays {
  C* nudged_min;
  C* nudged_max;
  C* scale;
  C* inverse_scale;
  C* quant_zero;
  C* zero;

  FakeQuantNudged<C> Get(int64_t c) const {
    return {nudged_min[c], nudged_max[c], scale[c], inverse_scale[c], quant_zero[c],
            zero[c] != C(0)};
  }
  // Channel c's range for the inner loops, which handle `zero` themselves.
  FakeQuantNudged<C> Range(int64_t c) const {
    return {nudged_min[c], nudged_max[c], scale[c], inverse_scale[c], quant_zero[c], false};
  }
  // The arrays from channel c on.
  NudgedArrays From(int64_t c) const {
    return {nudged_min + c, nudged_max + c, scale + c, inverse_scale + c, quant_zero + c,
            zero + c};
  }
};

template <typename T, typename WS, typename C = ComputeType<T>>
inline NudgedArrays<C> TakeNudgedScratch(const ChannelView& v, WS& ws) {
  NudgedArrays<C> n;
  C** fields[] = {&n.nudged_min, &n.nudged_max, &n.scale,
                  &n.inverse_scale, &n.quant_zero, &n.zero};
  for (C** f : fields) *f = ws.template Take<C>(v.depth);
  return n;
}

template <typename T, typename C = ComputeType<T>>
inline void NudgeAll(const ChannelView& v, const RangeSource<T>& range,
                     FakeQuantBounds bounds, bool zero_range_special,
                     const NudgedArrays<C>& out) {
  for (int64_t c = 0; c < v.depth; ++c) {
    const FakeQuantNudged<C> n = NudgeFakeQuantRange(range.Min(c), range.Max(c), bounds);
    out.nudged_min[c] = n.nudged_min;
    out.nudged_max[c] = n.nudged_max;
    out.scale[c] = n.scale;
    out.inverse_scale[c] = n.inverse_scale;
    out.quant_zero[c] = n.quant_zero;
    out.zero[c] = (zero_range_special && n.all_zero) ? C(1) : C(0);
  }
}

template <typename T>
size_t FakeQuantWorkspaceBytes(const ChannelView& v) {
  if (v.size() == 0) return 0;  // nothing to do, whatever the depth
  WorkspaceMeter meter;
  TakeNudgedScratch<T>(v, meter);
  return meter.used();
}

template <GridStep kStep, typename T, typename ParallelFor>
void FakeQuantForwardCpu(const FakeQuantArgs<T>& args, Workspace& ws, ParallelFor&& pfor) {
  ScopedFlushDenormals flush;  // as TF's CPU kernels; pfor bodies set it too
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  if (v.size() == 0) return;
  const NudgedArrays<C> na = TakeNudgedScratch<T>(v, ws);
  NudgeAll(v, args.range, args.bounds, args.zero_range_outputs_zero, na);
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const FakeQuantNudged<C> n = na.Get(c);
          UnaryBlocks(args.input, args.output, first, count,
                      [&](const C* __restrict x, C* __restrict y, int64_t, int64_t m) {
                        if (n.all_zero) {
                          for (int64_t j = 0; j < m; ++j) y[j] = C(0);
                        } else {
                          for (int64_t j = 0; j < m; ++j) y[j] = FakeQuantize<kStep>(x[j], n);
                        }
                      });
        },
        [&](int64_t c0, int64_t first, int64_t count) {
          UnaryBlocks<true>(args.input, args.output, first, count,
                      [&](const C* __restrict x, C* __restrict y, int64_t b, int64_t m) {
                        const NudgedArrays<C> channel = na.From(c0 + b);
                        for (int64_t j = 0; j < m; ++j) {
                          const C q = FakeQuantize<kStep>(x[j], channel.Range(j));
                          y[j] = channel.zero[j] != C(0) ? C(0) : q;
                        }
                      });
        });
  });
}

// Gradient. wrt_min/wrt_max may be null (Args has no such outputs); otherwise
// they hold `depth` values, summed in the canonical order of layout.h.

template <typename T, typename WS, typename C = ComputeType<T>>
inline void TakeGradientScratch(const ChannelView& v, bool with_sums, WS& ws,
                                NudgedArrays<C>* nudged, double** partial_min,
                                double** partial_max) {
  *nudged = TakeNudgedScratch<T>(v, ws);
  *partial_min = *partial_max = nullptr;
  if (!with_sums) return;
  const int64_t partials = GradientSumChunks(v) * v.depth;
  *partial_min = ws.template Take<double>(partials);
  *partial_max = ws.template Take<double>(partials);
}

template <typename T>
size_t FakeQuantGradientWorkspaceBytes(const ChannelView& v, bool with_sums) {
  if (v.size() == 0) return 0;  // only the range backprops: zeros
  WorkspaceMeter meter;
  NudgedArrays<ComputeType<T>> n;
  double *a, *b;
  TakeGradientScratch<T>(v, with_sums, meter, &n, &a, &b);
  return meter.used();
}

// wrt_input for a block of one channel, plus the below/above contributions
// (each element's gradient or 0) when `to_min`/`to_max` are given.
// `n` is taken by value: through a reference GCC cannot prove that the stores
// to dx leave it unchanged, and the loop stays scalar (seen in the thread-pool
// path: 10x slower).
template <typename C>
inline void GradientBlock(const C* __restrict g, const C* __restrict x, C* __restrict dx,
                          C* __restrict to_min, C* __restrict to_max, int64_t m,
                          const FakeQuantNudged<C> n) {
  if (n.all_zero) {  // min == max == 0: pass through, nothing to the range
    for (int64_t j = 0; j < m; ++j) dx[j] = g[j];
    if (to_min != nullptr) {
      for (int64_t j = 0; j < m; ++j) to_min[j] = to_max[j] = C(0);
    }
    return;
  }
  if (to_min == nullptr) {
    for (int64_t j = 0; j < m; ++j) dx[j] = FakeQuantGradient(g[j], x[j], n).wrt_input;
    return;
  }
  for (int64_t j = 0; j < m; ++j) {
    const FakeQuantGradientParts<C> p = FakeQuantGradient(g[j], x[j], n);
    dx[j] = p.wrt_input;
    to_min[j] = p.wrt_min;
    to_max[j] = p.wrt_max;
  }
}

// lanes[j % kFlatLanes] += values[j] (in double), for j in [0, m), in order.
template <typename C>
inline void AddToLanes(const C* __restrict values, int64_t m, double* __restrict lanes) {
  int64_t j = 0;
  for (; j + kFlatLanes <= m; j += kFlatLanes) {
#ifdef __AVX__
    if (std::is_same<C, float>::value) {
      for (int l = 0; l < kFlatLanes; l += 4) {
        const __m256d add = _mm256_cvtps_pd(
            _mm_loadu_ps(reinterpret_cast<const float*>(values) + j + l));
        _mm256_storeu_pd(lanes + l, _mm256_add_pd(_mm256_loadu_pd(lanes + l), add));
      }
      continue;
    }
#endif
    for (int l = 0; l < kFlatLanes; ++l) lanes[l] += static_cast<double>(values[j + l]);
  }
  for (int l = 0; j + l < m; ++l) lanes[l] += static_cast<double>(values[j + l]);
}

template <typename T, typename ParallelFor>
void FakeQuantGradientCpu(const FakeQuantGradientArgs<T>& args, Workspace& ws,
                          ParallelFor&& pfor) {
  ScopedFlushDenormals flush;  // as TF's CPU kernels; pfor bodies set it too
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  const bool with_sums = args.wrt_min != nullptr;
  if (v.size() == 0) {  // empty sums: +0 for every channel, no workspace
    if (with_sums) {
      for (int64_t c = 0; c < v.depth; ++c) args.wrt_min[c] = args.wrt_max[c] = StoreAs<T>(C(0));
    }
    return;
  }
  NudgedArrays<C> na;
  double *partial_min, *partial_max;
  TakeGradientScratch<T>(v, with_sums, ws, &na, &partial_min, &partial_max);
  NudgeAll(v, args.range, args.bounds, args.zero_range_passes_through, na);
  const int64_t chunks = GradientSumChunks(v);
  if (!with_sums) {  // Args: per tensor
    const FakeQuantNudged<C> n = na.Get(0);
    pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
      BinaryBlocks(args.gradients, args.input, args.wrt_input, begin, end - begin,
                   [&](const C* g, const C* x, C* y, int64_t, int64_t m) {
                     GradientBlock<C>(g, x, y, nullptr, nullptr, m, n);
                   });
    });
    return;
  }
  if (v.depth == 1 && v.outer == 1) {
    // Per tensor: chunks of kFlatChunk elements, kFlatLanes lanes each.
    static_assert(kFlatChunk % kBlock == 0 && kBlock % kFlatLanes == 0, "chunk layout");
    const int64_t n_total = v.size();
    const FakeQuantNudged<C> n = na.Get(0);
    pfor(chunks, kFlatChunk * kElementwiseCost, [&](int64_t k0, int64_t k1) {
      alignas(64) C to_min[kBlock], to_max[kBlock];
      for (int64_t k = k0; k < k1; ++k) {
        alignas(64) double lanes_min[kFlatLanes] = {0.0};
        alignas(64) double lanes_max[kFlatLanes] = {0.0};
        const int64_t first = k * kFlatChunk;
        const int64_t count = n_total - first < kFlatChunk ? n_total - first : kFlatChunk;
        BinaryBlocks(args.gradients, args.input, args.wrt_input, first, count,
                     [&](const C* g, const C* x, C* y, int64_t, int64_t m) {
                       GradientBlock<C>(g, x, y, to_min, to_max, m, n);
                       // Blocks start at multiples of kFlatLanes: lane = j % kFlatLanes.
                       AddToLanes(to_min, m, lanes_min);
                       AddToLanes(to_max, m, lanes_max);
                     });
        partial_min[k] = TreeFoldLanes(lanes_min, kFlatLanes);
        partial_max[k] = TreeFoldLanes(lanes_max, kFlatLanes);
      }
    });
  } else {
    // Per channel over [rows, depth] (inner == 1): chunks of kRowChunk rows,
    // each channel adding its rows in order. kSumRows rows are done together,
    // a kSumChannels-wide slice of channels at a time: their float
    // contributions are staged in L1, then each channel's running double sum
    // is loaded once, gets the kSumRows values added in row order, and is
    // stored once (the same additions in the same order as one row at a time,
    // with a quarter of the sums' loads and stores).
    constexpr int64_t kSumRows = 4;
    constexpr int64_t kSumChannels = 256;
    static_assert(kRowChunk % kSumRows == 0, "row groups inside a chunk");
    pfor(chunks, kRowChunk * v.depth * kElementwiseCost, [&](int64_t k0, int64_t k1) {
      alignas(64) C to_min[kSumRows][kSumChannels], to_max[kSumRows][kSumChannels];
      for (int64_t k = k0; k < k1; ++k) {
        double* __restrict pmin = partial_min + k * v.depth;
        double* __restrict pmax = partial_max + k * v.depth;
        for (int64_t c = 0; c < v.depth; ++c) pmin[c] = pmax[c] = 0.0;
        const int64_t r_end = (k + 1) * kRowChunk < v.outer ? (k + 1) * kRowChunk : v.outer;
        for (int64_t r = k * kRowChunk; r < r_end; r += kSumRows) {
          const int64_t rows = r_end - r < kSumRows ? r_end - r : kSumRows;
          for (int64_t c0 = 0; c0 < v.depth; c0 += kSumChannels) {
            const int64_t w = v.depth - c0 < kSumChannels ? v.depth - c0 : kSumChannels;
            for (int64_t q = 0; q < rows; ++q) {
              C* __restrict row_min = to_min[q];
              C* __restrict row_max = to_max[q];
              BinaryBlocks<true>(
                  args.gradients, args.input, args.wrt_input, (r + q) * v.depth + c0, w,
                  [&](const C* __restrict g, const C* __restrict x, C* __restrict y,
                      int64_t b, int64_t m) {
                    const NudgedArrays<C> channel = na.From(c0 + b);
                    C* __restrict tmin = row_min + b;
                    C* __restrict tmax = row_max + b;
                    for (int64_t j = 0; j < m; ++j) {
                      const FakeQuantGradientParts<C> p =
                          FakeQuantGradient(g[j], x[j], channel.Range(j));
                      // min == max == 0 channels pass through, adding nothing.
                      const bool pass = channel.zero[j] != C(0);
                      y[j] = pass ? g[j] : p.wrt_input;
                      tmin[j] = pass ? C(0) : p.wrt_min;
                      tmax[j] = pass ? C(0) : p.wrt_max;
                    }
                  });
            }
            // A separate loop: one element width per loop vectorises.
            double* __restrict lo = pmin + c0;
            double* __restrict hi = pmax + c0;
            if (rows == kSumRows) {
              for (int64_t j = 0; j < w; ++j) {
                double a = lo[j], b = hi[j];
                for (int64_t q = 0; q < kSumRows; ++q) {
                  a += static_cast<double>(to_min[q][j]);
                  b += static_cast<double>(to_max[q][j]);
                }
                lo[j] = a;
                hi[j] = b;
              }
            } else {
              for (int64_t q = 0; q < rows; ++q) {
                for (int64_t j = 0; j < w; ++j) {
                  lo[j] += static_cast<double>(to_min[q][j]);
                  hi[j] += static_cast<double>(to_max[q][j]);
                }
              }
            }
          }
        }
      }
    });
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    args.wrt_min[c] = StoreDoubleAs<T>(
        CombinePartials(chunks, [&](int64_t k) { return partial_min[k * v.depth + c]; }));
    args.wrt_max[c] = StoreDoubleAs<T>(
        CombinePartials(chunks, [&](int64_t k) { return partial_max[k * v.depth + c]; }));
  }
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_KERNELS_H_
