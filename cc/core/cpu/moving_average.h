// The CPU loop of FakeQuantWithMovingAverage (op_args.h): one pass for the
// batch's finite range, the moving-average update (moving_average.h), then the
// per-tensor FakeQuant pass (cpu/fake_quant.h), each through the fused
// activation (activation.h) when there is one. One op instead of the two
// reductions, the finiteness test and the ~20 scalar ops of the TF-op
// composition: on the small activations of a training step the op count, not
// the bandwidth, is most of a quantizer's cost.
#ifndef TF_QDQ_CC_CORE_CPU_MOVING_AVERAGE_H_
#define TF_QDQ_CC_CORE_CPU_MOVING_AVERAGE_H_

#include <cmath>
#include <cstdint>

#include "cc/core/cpu/fake_quant.h"
#include "cc/core/cpu/min_max.h"
#include "cc/core/moving_average.h"
#include "cc/core/op_args.h"

namespace tf_qdq {
namespace core {

template <typename T, typename WS, typename C = ComputeType<T>>
inline void TakeBatchRangeScratch(int64_t size, WS& ws, C** partial_min, C** partial_max) {
  TakeMinMaxScratch<C>(PerTensorView(size), ws, partial_min, partial_max);
}

template <typename T>
size_t MovingAverageFakeQuantWorkspaceBytes(int64_t size) {
  using C = ComputeType<T>;
  WorkspaceMeter meter;
  C *a, *b;
  TakeBatchRangeScratch<T>(size, meter, &a, &b);
  if (size > 0) TakeNudgedScratch<T>(PerTensorView(size), meter);
  return meter.used();
}

// min/max of the finite values of act(x[0, n)) (+inf/-inf when there is
// none), as the composition's batch range. The activations are monotone, so
// with a finite min/max of x (NaNs skipped by the min/max pass) they are the
// activation's of those; an infinity or no number at all, the rare bad batch,
// costs a second, serial pass. min_is_zero: act(x) is never negative, so its
// minimum is taken as 0 (the widening to hold 0 makes it that anyway).
template <Activation kAct, typename T, typename ParallelFor, typename C = ComputeType<T>>
void FiniteBatchRange(const T* x, int64_t n, bool min_is_zero, C* partial_min, C* partial_max,
                      C* min_out, C* max_out, ParallelFor&& pfor) {
  C mn, mx;
  ChannelMinMax(x, PerTensorView(n), &mn, &mx, partial_min, partial_max, pfor);
  if (std::isfinite(mn) && std::isfinite(mx)) {
    *min_out = min_is_zero ? C(0) : Activate<kAct>(mn);
    *max_out = Activate<kAct>(mx);
    return;
  }
  const C kInf = Infinity<C>();
  C lo = min_is_zero ? C(0) : kInf, hi = -kInf;
  for (int64_t i = 0; i < n; ++i) {
    const C value = Activate<kAct>(ToCompute(x[i]));
    if (!std::isfinite(value)) continue;
    if (!min_is_zero) lo = value < lo ? value : lo;
    hi = hi < value ? value : hi;
  }
  *min_out = lo;
  *max_out = hi;
}

template <typename T, typename ParallelFor>
void MovingAverageFakeQuantCpu(const MovingAverageFakeQuantArgs<T>& args, Workspace& ws,
                               ParallelFor&& pfor) {
  // As TF's CPU kernels, which the composition's scalar ops run as.
  ScopedFlushDenormals flush;
  using C = ComputeType<T>;
  const int64_t n = args.quantize.view.size();
  C *partial_min, *partial_max;
  TakeBatchRangeScratch<T>(n, ws, &partial_min, &partial_max);
  C mn, mx;
  DispatchActivation(args.quantize.activation, [&](auto act) {
    FiniteBatchRange<decltype(act)::value>(args.quantize.input, n, args.non_negative, partial_min,
                                           partial_max, &mn, &mx, pfor);
  });
  const MovingAverageStep step =
      UpdateMovingAverage(args.old, static_cast<float>(mn), static_cast<float>(mx), mn <= mx,
                          args.momentum, args.symmetric);
  *args.updated = step.range;
  *args.grid_min = StoreAs<T>(step.grid_min);
  *args.grid_max = StoreAs<T>(step.grid_max);
  // The Vars formula (contract/fake_quant.h: GridStepOf(FakeQuantOp::kVars)).
  FakeQuantForwardCpu<GridStep::kDivideByScale>(args.quantize, ws, pfor);
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_MOVING_AVERAGE_H_
