// CPU implementations of every tf-qdq op, framework-free.
//
// Each function takes raw pointers, a ChannelView, a caller-provided Workspace
// and a ParallelFor: any callable `pfor(units, cost_per_unit, fn)` that calls
// `fn(begin, end)` over disjoint sub-ranges covering [0, units) (TF's thread
// pool in the op library, a serial loop in the core module). Results never
// depend on how pfor splits the work.
//
// Passes over the data: one per output, plus one when a QDQ range is computed
// from the data.
#ifndef TF_QDQ_CC_CORE_CPU_KERNELS_H_
#define TF_QDQ_CC_CORE_CPU_KERNELS_H_

#include <cstdint>
#include <type_traits>

#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

// Rough cycles per element, for the thread pool's cost model.
constexpr int64_t kElementwiseCost = 8;

// Calls fn(std::integral_constant<RoundMode,..>, std::integral_constant<bool,..>)
// so the per-element loop is instantiated without branches inside it.
template <typename Fn>
inline void DispatchQdqVariant(RoundMode mode, bool clamp, Fn&& fn) {
  using HalfToEven = std::integral_constant<RoundMode, RoundMode::kHalfToEven>;
  using HalfUp = std::integral_constant<RoundMode, RoundMode::kHalfUp>;
  if (mode == RoundMode::kHalfToEven) {
    if (clamp) fn(HalfToEven{}, std::true_type{});
    else fn(HalfToEven{}, std::false_type{});
  } else {
    if (clamp) fn(HalfUp{}, std::true_type{});
    else fn(HalfUp{}, std::false_type{});
  }
}

// ---------------------------------------------------------------------------
// Min/max of each channel, NaNs skipped.
// ---------------------------------------------------------------------------

// Vectorisable min/max of a contiguous run: kLanes independent accumulators.
template <typename T, typename C = ComputeType<T>>
inline void RunMinMax(const T* x, int64_t count, C* min_out, C* max_out) {
  constexpr int kLanes = 16;
  C mn[kLanes], mx[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    mn[j] = Infinity<C>();
    mx[j] = -Infinity<C>();
  }
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const C v = ToCompute(x[i + j]);
      mn[j] = RunningMin(mn[j], v);
      mx[j] = RunningMax(mx[j], v);
    }
  }
  for (; i < count; ++i) {
    const C v = ToCompute(x[i]);
    mn[0] = RunningMin(mn[0], v);
    mx[0] = RunningMax(mx[0], v);
  }
  C a = *min_out, b = *max_out;
  for (int j = 0; j < kLanes; ++j) {
    a = RunningMin(a, mn[j]);
    b = RunningMax(b, mx[j]);
  }
  *min_out = a;
  *max_out = b;
}

// Blocks of outer rows reduced in parallel into partial arrays when channels
// are short (inner small); one task per channel when they are long.
constexpr int64_t kLongChannelRun = 64;
constexpr int64_t kMinMaxBlockElements = 1 << 16;
constexpr int64_t kMaxMinMaxBlocks = 32;

inline int64_t MinMaxRowsPerBlock(const ChannelView& v) {
  const int64_t row = v.depth * v.inner;
  int64_t rows = CeilDiv(kMinMaxBlockElements, row > 0 ? row : 1);
  if (CeilDiv(v.outer, rows) > kMaxMinMaxBlocks) {
    rows = CeilDiv(v.outer, kMaxMinMaxBlocks);
  }
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
  const int64_t blocks =
      v.depth == 1 ? CeilDiv(v.size(), kMinMaxBlockElements)
                   : CeilDiv(v.outer, MinMaxRowsPerBlock(v)) * v.depth;
  *partial_min = ws.template Take<C>(blocks);
  *partial_max = ws.template Take<C>(blocks);
}

template <typename T, typename ParallelFor, typename C = ComputeType<T>>
void ChannelMinMax(const T* x, const ChannelView& v, C* mins, C* maxs,
                   C* partial_min, C* partial_max, ParallelFor&& pfor) {
  const C kInf = Infinity<C>();
  if (v.depth == 1) {  // per tensor: flat blocks
    const int64_t n = v.size();
    const int64_t blocks = CeilDiv(n, kMinMaxBlockElements);
    pfor(blocks, kMinMaxBlockElements * 2, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t first = b * kMinMaxBlockElements;
        const int64_t count =
            (n - first < kMinMaxBlockElements) ? n - first : kMinMaxBlockElements;
        partial_min[b] = kInf;
        partial_max[b] = -kInf;
        RunMinMax(x + first, count, &partial_min[b], &partial_max[b]);
      }
    });
    C mn = kInf, mx = -kInf;
    for (int64_t b = 0; b < blocks; ++b) {
      mn = RunningMin(mn, partial_min[b]);
      mx = RunningMax(mx, partial_max[b]);
    }
    mins[0] = mn;
    maxs[0] = mx;
    return;
  }
  if (MinMaxPerChannelTask(v)) {  // long contiguous runs: a task per channel
    pfor(v.depth, v.outer * v.inner * 2, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        C mn = kInf, mx = -kInf;
        for (int64_t o = 0; o < v.outer; ++o) {
          RunMinMax(x + (o * v.depth + c) * v.inner, v.inner, &mn, &mx);
        }
        mins[c] = mn;
        maxs[c] = mx;
      }
    });
    return;
  }
  // Short runs: blocks of rows, each with its own partial min/max per channel.
  const int64_t rows_per_block = MinMaxRowsPerBlock(v);
  const int64_t blocks = CeilDiv(v.outer, rows_per_block);
  const int64_t row = v.depth * v.inner;
  pfor(blocks, rows_per_block * row * 2, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      C* pmin = partial_min + b * v.depth;
      C* pmax = partial_max + b * v.depth;
      for (int64_t c = 0; c < v.depth; ++c) {
        pmin[c] = kInf;
        pmax[c] = -kInf;
      }
      const int64_t o_end =
          (b + 1) * rows_per_block < v.outer ? (b + 1) * rows_per_block : v.outer;
      ForEachChannelRun(
          v, b * rows_per_block * row, o_end * row,
          [&](int64_t c, int64_t first, int64_t count) {
            RunMinMax(x + first, count, &pmin[c], &pmax[c]);
          },
          [&](int64_t c0, int64_t first, int64_t count) {
            for (int64_t j = 0; j < count; ++j) {
              const C val = ToCompute(x[first + j]);
              pmin[c0 + j] = RunningMin(pmin[c0 + j], val);
              pmax[c0 + j] = RunningMax(pmax[c0 + j], val);
            }
          });
    }
  });
  pfor(v.depth, blocks * 2, [&](int64_t c0, int64_t c1) {
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

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV4 (V2, V3 share it)
// ---------------------------------------------------------------------------


template <typename T, typename WS, typename C = ComputeType<T>>
inline void TakeQdqForwardScratch(const ChannelView& v, bool range_given,
                                  WS& ws, C** mins, C** maxs,
                                  QdqScale<C>** scales, C** partial_min,
                                  C** partial_max) {
  *mins = ws.template Take<C>(v.depth);
  *maxs = ws.template Take<C>(v.depth);
  *scales = ws.template Take<QdqScale<C>>(v.depth);
  *partial_min = *partial_max = nullptr;
  if (!range_given) TakeMinMaxScratch<C>(v, ws, partial_min, partial_max);
}

template <typename T>
size_t QdqForwardWorkspaceBytes(const ChannelView& v, bool range_given) {
  using C = ComputeType<T>;
  WorkspaceMeter meter;
  C *a, *b, *c, *d;
  QdqScale<C>* s;
  TakeQdqForwardScratch<T>(v, range_given, meter, &a, &b, &s, &c, &d);
  return meter.used();
}

template <typename T, typename ParallelFor>
void QdqForwardCpu(const QdqForwardArgs<T>& args, Workspace& ws,
                   ParallelFor&& pfor) {
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  if (v.size() == 0) return;
  C *mins, *maxs, *partial_min, *partial_max;
  QdqScale<C>* scales;
  TakeQdqForwardScratch<T>(v, args.range_given, ws, &mins, &maxs, &scales,
                           &partial_min, &partial_max);
  if (args.range_given) {
    for (int64_t c = 0; c < v.depth; ++c) {
      mins[c] = ToCompute(args.input_min[c]);
      maxs[c] = ToCompute(args.input_max[c]);
    }
  } else {
    ChannelMinMax(args.input, v, mins, maxs, partial_min, partial_max, pfor);
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    scales[c] = ComputeQdqScale(args.bounds, mins[c], maxs[c]);
  }
  const T* in = args.input;
  T* out = args.output;
  DispatchQdqVariant(args.round_mode, args.range_given, [&](auto mode, auto clamp) {
    constexpr RoundMode kMode = decltype(mode)::value;
    constexpr bool kClamp = decltype(clamp)::value;
    pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
      ForEachChannelRun(
          v, begin, end,
          [&](int64_t c, int64_t first, int64_t count) {
            const QdqScale<C> s = scales[c];
            for (int64_t i = first; i < first + count; ++i) {
              out[i] = StoreAs<T>(
                  QuantizeDequantize<kMode, kClamp>(ToCompute(in[i]), s));
            }
          },
          [&](int64_t c0, int64_t first, int64_t count) {
            for (int64_t j = 0; j < count; ++j) {
              out[first + j] = StoreAs<T>(QuantizeDequantize<kMode, kClamp>(
                  ToCompute(in[first + j]), scales[c0 + j]));
            }
          });
    });
  });
}

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV4Grad: input_backprop = gradients * [min <= x <= max]
// ---------------------------------------------------------------------------


template <typename T, typename ParallelFor>
void QdqGradientCpu(const QdqGradientArgs<T>& args, ParallelFor&& pfor) {
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  const T* g = args.gradients;
  const T* x = args.input;
  T* dx = args.input_backprop;
  for (int64_t c = 0; c < args.range_size; ++c) {
    args.input_min_backprop[c] = args.input_max_backprop[c] = StoreAs<T>(C(0));
  }
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const C lo = ToCompute(args.input_min[c]);
          const C hi = ToCompute(args.input_max[c]);
          for (int64_t i = first; i < first + count; ++i) {
            dx[i] = StoreAs<T>(QdqGradient(ToCompute(g[i]), ToCompute(x[i]), lo, hi));
          }
        },
        [&](int64_t c0, int64_t first, int64_t count) {
          for (int64_t j = 0; j < count; ++j) {
            dx[first + j] = StoreAs<T>(QdqGradient(
                ToCompute(g[first + j]), ToCompute(x[first + j]),
                ToCompute(args.input_min[c0 + j]),
                ToCompute(args.input_max[c0 + j])));
          }
        });
  });
}

// ---------------------------------------------------------------------------
// FakeQuantWithMinMax{Args,Vars,VarsPerChannel}
// ---------------------------------------------------------------------------


template <typename T, typename WS, typename C = ComputeType<T>>
inline FakeQuantNudged<C>* TakeNudgedScratch(const ChannelView& v, WS& ws) {
  return ws.template Take<FakeQuantNudged<C>>(v.depth);
}

template <typename T>
size_t FakeQuantWorkspaceBytes(const ChannelView& v) {
  WorkspaceMeter meter;
  TakeNudgedScratch<T>(v, meter);
  return meter.used();
}

template <GridStep kStep, typename T, typename ParallelFor>
void FakeQuantForwardCpu(const FakeQuantArgs<T>& args, Workspace& ws,
                         ParallelFor&& pfor) {
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  if (v.size() == 0) return;
  FakeQuantNudged<C>* nudged = TakeNudgedScratch<T>(v, ws);
  for (int64_t c = 0; c < v.depth; ++c) {
    nudged[c] = NudgeFakeQuantRange(args.range.Min(c), args.range.Max(c),
                                    args.bounds);
    if (!args.zero_range_outputs_zero) nudged[c].all_zero = false;
  }
  const T* in = args.input;
  T* out = args.output;
  auto one = [&](const FakeQuantNudged<C>& n, int64_t i) {
    out[i] = n.all_zero ? StoreAs<T>(C(0))
                        : StoreAs<T>(FakeQuantize<kStep>(ToCompute(in[i]), n));
  };
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const FakeQuantNudged<C> n = nudged[c];
          for (int64_t i = first; i < first + count; ++i) one(n, i);
        },
        [&](int64_t c0, int64_t first, int64_t count) {
          for (int64_t j = 0; j < count; ++j) one(nudged[c0 + j], first + j);
        });
  });
}


template <typename T, typename WS, typename C = ComputeType<T>>
inline void TakeGradientScratch(const ChannelView& v, bool with_sums, WS& ws,
                                FakeQuantNudged<C>** nudged,
                                double** partial_min, double** partial_max) {
  *nudged = TakeNudgedScratch<T>(v, ws);
  *partial_min = *partial_max = nullptr;
  if (!with_sums) return;
  const int64_t partials = GradientSumChunks(v) * v.depth;
  *partial_min = ws.template Take<double>(partials);
  *partial_max = ws.template Take<double>(partials);
}

template <typename T>
size_t FakeQuantGradientWorkspaceBytes(const ChannelView& v, bool with_sums) {
  WorkspaceMeter meter;
  FakeQuantNudged<ComputeType<T>>* n;
  double *a, *b;
  TakeGradientScratch<T>(v, with_sums, meter, &n, &a, &b);
  return meter.used();
}

template <typename T, typename ParallelFor>
void FakeQuantGradientCpu(const FakeQuantGradientArgs<T>& args, Workspace& ws,
                          ParallelFor&& pfor) {
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  const bool with_sums = args.wrt_min != nullptr;
  FakeQuantNudged<C>* nudged;
  double *partial_min, *partial_max;
  TakeGradientScratch<T>(v, with_sums, ws, &nudged, &partial_min, &partial_max);
  for (int64_t c = 0; c < v.depth; ++c) {
    nudged[c] = NudgeFakeQuantRange(args.range.Min(c), args.range.Max(c),
                                    args.bounds);
    if (!args.zero_range_passes_through) nudged[c].all_zero = false;
  }
  const T* g = args.gradients;
  const T* x = args.input;
  T* dx = args.wrt_input;
  // Returns the element's contributions to the min/max sums.
  auto one = [&](const FakeQuantNudged<C>& n, int64_t i, C* to_min, C* to_max) {
    if (n.all_zero) {
      dx[i] = g[i];
      *to_min = *to_max = C(0);
      return;
    }
    const FakeQuantGradientParts<C> p =
        FakeQuantGradient(ToCompute(g[i]), ToCompute(x[i]), n);
    dx[i] = StoreAs<T>(p.wrt_input);
    *to_min = p.wrt_min;
    *to_max = p.wrt_max;
  };
  const int64_t chunks = GradientSumChunks(v);
  if (!with_sums) {
    pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
      const FakeQuantNudged<C> n = nudged[0];
      C unused_min, unused_max;
      for (int64_t i = begin; i < end; ++i) one(n, i, &unused_min, &unused_max);
    });
    return;
  }
  if (v.depth == 1 && v.outer == 1) {
    // Per tensor: flat chunks with kFlatLanes lanes each.
    const int64_t n_total = v.size();
    pfor(chunks, kFlatChunk * kElementwiseCost, [&](int64_t k0, int64_t k1) {
      const FakeQuantNudged<C> n = nudged[0];
      for (int64_t k = k0; k < k1; ++k) {
        double lanes_min[kFlatLanes], lanes_max[kFlatLanes];
        for (int j = 0; j < kFlatLanes; ++j) lanes_min[j] = lanes_max[j] = 0.0;
        const int64_t first = k * kFlatChunk;
        const int64_t count =
            n_total - first < kFlatChunk ? n_total - first : kFlatChunk;
        int64_t o = 0;
        for (; o + kFlatLanes <= count; o += kFlatLanes) {
          for (int j = 0; j < kFlatLanes; ++j) {
            C to_min, to_max;
            one(n, first + o + j, &to_min, &to_max);
            lanes_min[j] += static_cast<double>(to_min);
            lanes_max[j] += static_cast<double>(to_max);
          }
        }
        for (int j = 0; o + j < count; ++j) {
          C to_min, to_max;
          one(n, first + o + j, &to_min, &to_max);
          lanes_min[j] += static_cast<double>(to_min);
          lanes_max[j] += static_cast<double>(to_max);
        }
        partial_min[k] = TreeFoldLanes(lanes_min, kFlatLanes);
        partial_max[k] = TreeFoldLanes(lanes_max, kFlatLanes);
      }
    });
  } else {
    // Per channel over [rows, depth] (inner == 1): chunks of kRowChunk rows.
    pfor(chunks, kRowChunk * v.depth * kElementwiseCost, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        double* pmin = partial_min + k * v.depth;
        double* pmax = partial_max + k * v.depth;
        for (int64_t c = 0; c < v.depth; ++c) pmin[c] = pmax[c] = 0.0;
        const int64_t r_end =
            (k + 1) * kRowChunk < v.outer ? (k + 1) * kRowChunk : v.outer;
        for (int64_t r = k * kRowChunk; r < r_end; ++r) {
          const int64_t row_first = r * v.depth;
          for (int64_t c = 0; c < v.depth; ++c) {
            C to_min, to_max;
            one(nudged[c], row_first + c, &to_min, &to_max);
            pmin[c] += static_cast<double>(to_min);
            pmax[c] += static_cast<double>(to_max);
          }
        }
      }
    });
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    args.wrt_min[c] = StoreDoubleAs<T>(CombinePartials(
        chunks, [&](int64_t k) { return partial_min[k * v.depth + c]; }));
    args.wrt_max[c] = StoreDoubleAs<T>(CombinePartials(
        chunks, [&](int64_t k) { return partial_max[k * v.depth + c]; }));
  }
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_KERNELS_H_
