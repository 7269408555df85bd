// The CPU loops of FakeQuantWithMinMax{Args,Vars,VarsPerChannel}, and the
// per-channel nudged ranges their gradients share (cpu/fake_quant_gradient.h;
// see cpu/blocks.h for what every CPU loop takes).
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

// Float, channels on the last axis (inner == 1): the per-channel constants are
// read once per kTileRows rows. The flat range [begin, end) is a partial row,
// then tiles of kTileRows whole rows, then single rows; each tile goes through
// in strips of kStrip channels, each channel's constants loaded once for the
// tile's rows. With the constants re-read for every row (the generic path
// below), the loop needed 3.0 instructions per element (callgrind, 1M
// values) and took 1.8x a copy's time at 16M; tiled, 1.5.
constexpr int kTileRows = 4;
constexpr int64_t kStrip = 256;

// Rows [0, R) of `x`/`y` (`stride` apart), channels [0, w) of `na`.
template <GridStep kStep, bool kAnyZero, bool kStream, int R>
QDQ_INLINE void FakeQuantRowTile(const float* __restrict x, float* __restrict y, int64_t stride,
                                 const NudgedArrays<float>& na, int64_t w) {
  alignas(64) float buf[R][kStrip];
  for (int64_t s = 0; s < w; s += kStrip) {
    const int64_t m = w - s < kStrip ? w - s : kStrip;
    const float* __restrict nmin = na.nudged_min + s;
    const float* __restrict nmax = na.nudged_max + s;
    const float* __restrict scale = na.scale + s;
    const float* __restrict inv = na.inverse_scale + s;
    const float* __restrict qzero = na.quant_zero + s;
    const float* __restrict zero_range = na.zero_range + s;
    const float* __restrict xs = x + s;
    for (int q = 0; q < R; ++q) PrefetchAhead(xs + q * stride, m);
    for (int64_t j = 0; j < m; ++j) {
      const FakeQuantNudged<float> n{nmin[j], nmax[j], scale[j], inv[j], qzero[j], false};
      const bool z = kAnyZero && zero_range[j] != 0.0f;
      for (int q = 0; q < R; ++q) {
        const float v = FakeQuantize<kStep>(xs[q * stride + j], n);
        (kStream ? buf[q][j] : y[q * stride + s + j]) = z ? 0.0f : v;
      }
    }
    if (kStream) {
      for (int q = 0; q < R; ++q) StreamStore(buf[q], y + q * stride + s, m);
    }
  }
}

template <GridStep kStep, bool kAnyZero, bool kStream>
QDQ_INLINE void FakeQuantChannelRowsBody(const float* x, float* y, int64_t depth,
                                         const NudgedArrays<float>& na, int64_t begin,
                                         int64_t end) {
  ScopedFlushDenormals flush;
  int64_t i = begin;
  if (i % depth != 0) {
    const int64_t c = i % depth;
    const int64_t m = depth - c < end - i ? depth - c : end - i;
    FakeQuantRowTile<kStep, kAnyZero, kStream, 1>(x + i, y + i, depth, na.From(c), m);
    i += m;
  }
  for (; i + kTileRows * depth <= end; i += kTileRows * depth) {
    FakeQuantRowTile<kStep, kAnyZero, kStream, kTileRows>(x + i, y + i, depth, na, depth);
  }
  for (; i < end; i += depth) {
    FakeQuantRowTile<kStep, kAnyZero, kStream, 1>(x + i, y + i, depth, na,
                                                  end - i < depth ? end - i : depth);
  }
  if (kStream) StreamFence();
}

template <GridStep kStep, bool kAnyZero, bool kStream>
void FakeQuantChannelRows(const float* x, float* y, int64_t depth, const NudgedArrays<float>& na,
                          int64_t begin, int64_t end) {
  FakeQuantChannelRowsBody<kStep, kAnyZero, kStream>(x, y, depth, na, begin, end);
}
#ifdef TF_QDQ_HAVE_WIDE_PATH
template <GridStep kStep, bool kAnyZero, bool kStream>
TF_QDQ_WIDE_FN void FakeQuantChannelRowsWide(const float* x, float* y, int64_t depth,
                                             const NudgedArrays<float>& na, int64_t begin,
                                             int64_t end) {
  FakeQuantChannelRowsBody<kStep, kAnyZero, kStream>(x, y, depth, na, begin, end);
}
#endif

// Calls fn(std::integral_constant<bool, a>{}, std::integral_constant<bool, b>{}).
template <typename Fn>
QDQ_INLINE void DispatchBools(bool a, bool b, Fn&& fn) {
  using F = std::false_type;
  using T = std::true_type;
  if (a) {
    b ? fn(T{}, T{}) : fn(T{}, F{});
  } else {
    b ? fn(F{}, T{}) : fn(F{}, F{});
  }
}

template <typename C>
inline bool AnyZeroChannel(const NudgedArrays<C>& na, int64_t depth) {
  bool any = false;
  for (int64_t c = 0; c < depth; ++c) any |= na.zero_range[c] != C(0);
  return any;
}

template <GridStep kStep, Activation kAct, typename T, typename ParallelFor>
void FakeQuantForwardCpuWith(const FakeQuantArgs<T>& args, Workspace& ws, ParallelFor&& pfor) {
  ScopedFlushDenormals flush;  // as TF's CPU kernels; pfor bodies set it too
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  if (v.size() == 0) return;
  const NudgedArrays<C> na = TakeNudgedScratch<T>(v, ws);
  NudgeAll(v, args.range, args.bounds, args.zero_range_rule, na);
  if constexpr (std::is_same<T, float>::value && kAct == Activation::kLinear) {
    if (v.inner == 1 && v.depth > 1) {
      DispatchBools(AnyZeroChannel(na, v.depth), PrepareOutput(args.output, v.size(), pfor),
                    [&](auto any_zero, auto streamed) {
        constexpr bool kZ = decltype(any_zero)::value, kS = decltype(streamed)::value;
        auto rows = &FakeQuantChannelRows<kStep, kZ, kS>;
#ifdef TF_QDQ_HAVE_WIDE_PATH
        if (CpuHasWideVectors()) rows = &FakeQuantChannelRowsWide<kStep, kZ, kS>;
#endif
        pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
          rows(args.input, args.output, v.depth, na, begin, end);
        });
      });
      return;
    }
  }
  const bool stream = PrepareOutput(args.output, v.size(), pfor);
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const FakeQuantNudged<C> n = na.Get(c);
          UnaryBlocks(
              args.input, args.output, first, count,
              [&](const C* __restrict x, C* __restrict y, int64_t, int64_t m) {
                if (n.zero_range) {
                  for (int64_t j = 0; j < m; ++j) y[j] = C(0);
                } else {
                  for (int64_t j = 0; j < m; ++j) {
                    y[j] = FakeQuantize<kStep>(Activate<kAct>(x[j]), n);
                  }
                }
              },
              stream);
        },
        [&](int64_t c0, int64_t first, int64_t count) {
          UnaryBlocks<true>(args.input, args.output, first, count,
                      [&](const C* __restrict x, C* __restrict y, int64_t b, int64_t m) {
                        const NudgedArrays<C> channel = na.From(c0 + b);
                        for (int64_t j = 0; j < m; ++j) {
                          const C q = FakeQuantize<kStep>(Activate<kAct>(x[j]), channel.Range(j));
                          y[j] = channel.zero_range[j] != C(0) ? C(0) : q;
                        }
                      });
        });
    if (stream) StreamFence();
  });
}

template <GridStep kStep, typename T, typename ParallelFor>
void FakeQuantForwardCpu(const FakeQuantArgs<T>& args, Workspace& ws, ParallelFor&& pfor) {
  DispatchActivation(args.activation, [&](auto act) {
    FakeQuantForwardCpuWith<kStep, decltype(act)::value>(args, ws, pfor);
  });
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_FAKE_QUANT_H_
