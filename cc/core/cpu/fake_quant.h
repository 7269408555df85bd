// The CPU loops of FakeQuantWithMinMax{Args,Vars,VarsPerChannel} and their
// gradients (see cpu/blocks.h for what every CPU loop takes).
#ifndef TF_QDQ_CC_CORE_CPU_FAKE_QUANT_H_
#define TF_QDQ_CC_CORE_CPU_FAKE_QUANT_H_

#include <cstdint>
#include <type_traits>

#include "cc/core/cpu/blocks.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

// ---------------------------------------------------------------------------
// FakeQuantWithMinMax{Args,Vars,VarsPerChannel}
// ---------------------------------------------------------------------------

// Nudged ranges per channel, as structures of arrays. `zero_range` is 1 where a
// min == max == 0 channel outputs zeros (Vars/PerChannel forward) or passes
// the gradient through (their gradients).
template <typename C>
struct NudgedArrays {
  C* nudged_min;
  C* nudged_max;
  C* scale;
  C* inverse_scale;
  C* quant_zero;
  C* zero_range;

  FakeQuantNudged<C> Get(int64_t c) const {
    return {nudged_min[c], nudged_max[c], scale[c], inverse_scale[c], quant_zero[c],
            zero_range[c] != C(0)};
  }
  // Channel c's range for the inner loops, which handle `zero_range` themselves.
  FakeQuantNudged<C> Range(int64_t c) const {
    return {nudged_min[c], nudged_max[c], scale[c], inverse_scale[c], quant_zero[c], false};
  }
  // The arrays from channel c on.
  NudgedArrays From(int64_t c) const {
    return {nudged_min + c, nudged_max + c, scale + c, inverse_scale + c, quant_zero + c,
            zero_range + c};
  }
};

template <typename T, typename WS, typename C = ComputeType<T>>
inline NudgedArrays<C> TakeNudgedScratch(const ChannelView& v, WS& ws) {
  NudgedArrays<C> n;
  C** fields[] = {&n.nudged_min, &n.nudged_max, &n.scale,
                  &n.inverse_scale, &n.quant_zero, &n.zero_range};
  for (C** f : fields) *f = ws.template Take<C>(v.depth);
  return n;
}

template <typename T, typename C = ComputeType<T>>
inline void NudgeAll(const ChannelView& v, const RangeSource<T>& range,
                     FakeQuantBounds bounds, bool zero_range_rule,
                     const NudgedArrays<C>& out) {
  for (int64_t c = 0; c < v.depth; ++c) {
    const FakeQuantNudged<C> n = NudgeFakeQuantRange(range.Min(c), range.Max(c), bounds);
    out.nudged_min[c] = n.nudged_min;
    out.nudged_max[c] = n.nudged_max;
    out.scale[c] = n.scale;
    out.inverse_scale[c] = n.inverse_scale;
    out.quant_zero[c] = n.quant_zero;
    out.zero_range[c] = (zero_range_rule && n.zero_range) ? C(1) : C(0);
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
  NudgeAll(v, args.range, args.bounds, args.zero_range_rule, na);
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const FakeQuantNudged<C> n = na.Get(c);
          UnaryBlocks(args.input, args.output, first, count,
                      [&](const C* __restrict x, C* __restrict y, int64_t, int64_t m) {
                        if (n.zero_range) {
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
                          y[j] = channel.zero_range[j] != C(0) ? C(0) : q;
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
  if (n.zero_range) {  // min == max == 0: pass through, nothing to the range
    for (int64_t j = 0; j < m; ++j) dx[j] = g[j];
    if (to_min != nullptr) {
      for (int64_t j = 0; j < m; ++j) to_min[j] = to_max[j] = C(0);
    }
    return;
  }
  if (to_min == nullptr) {
    for (int64_t j = 0; j < m; ++j) dx[j] = FakeQuantElementGradient(g[j], x[j], n).wrt_input;
    return;
  }
  for (int64_t j = 0; j < m; ++j) {
    const FakeQuantGradientParts<C> p = FakeQuantElementGradient(g[j], x[j], n);
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
  NudgeAll(v, args.range, args.bounds, args.zero_range_rule, na);
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
                          FakeQuantElementGradient(g[j], x[j], channel.Range(j));
                      // min == max == 0 channels pass through, adding nothing.
                      const bool pass = channel.zero_range[j] != C(0);
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

#endif  // TF_QDQ_CC_CORE_CPU_FAKE_QUANT_H_
