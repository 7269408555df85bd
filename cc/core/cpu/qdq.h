// The CPU loops of QuantizeAndDequantizeV4 (V2 and V3 share it) and its
// gradient (see cpu/blocks.h for what every CPU loop takes).
#ifndef TF_QDQ_CC_CORE_CPU_QDQ_H_
#define TF_QDQ_CC_CORE_CPU_QDQ_H_

#include <cstdint>

#include "cc/core/cpu/blocks.h"
#include "cc/core/cpu/min_max.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

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
  const bool stream = PrepareOutput(args.output, v.size(), pfor);
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
                        },
                        stream);
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
                        },
                        stream);
          });
      if (stream) StreamFence();
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
  const bool stream = PrepareOutput(args.input_backprop, v.size(), pfor);
  pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
    ForEachChannelRun(
        v, begin, end,
        [&](int64_t c, int64_t first, int64_t count) {
          const C min = lo[c], max = hi[c];
          BinaryBlocks(args.gradients, args.input, args.input_backprop, first, count,
                       [&](const C* __restrict g, const C* __restrict x, C* __restrict y,
                           int64_t, int64_t m) {
                         for (int64_t j = 0; j < m; ++j) y[j] = QdqGradient(g[j], x[j], min, max);
                       },
                       stream);
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
                       },
                       stream);
        });
    if (stream) StreamFence();
  });
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_QDQ_H_
