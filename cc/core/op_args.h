// What every tf-qdq op implementation (CPU loops, CUDA kernels) receives: raw
// pointers into the device's memory, the channel view, and the op's settings.
// Framework-free.
#ifndef TF_QDQ_CC_CORE_OP_ARGS_H_
#define TF_QDQ_CC_CORE_OP_ARGS_H_

#include <cstdint>

#include "cc/core/activation.h"
#include "cc/core/layout.h"
#include "cc/core/moving_average.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

// QuantizeAndDequantizeV4 (V2 and V3 share it).
template <typename T>
struct QdqForwardArgs {
  const T* input;
  T* output;
  ChannelView view;
  QdqBounds bounds;
  RoundMode round_mode;
  bool range_given;
  const T* input_min;  // `depth` values; read only when range_given
  const T* input_max;
  // Per tensor with a given range, TF rejects min > max (and NaN). The CPU
  // kernel raises; the GPU cannot without a host sync and outputs NaN.
  bool check_range_order;
};

// QuantizeAndDequantizeV4Grad: input_backprop = gradients * [min <= x <= max].
template <typename T>
struct QdqGradientArgs {
  const T* gradients;
  const T* input;
  T* input_backprop;
  ChannelView view;
  const T* input_min;  // `depth` values
  const T* input_max;
  T* input_min_backprop;  // `range_size` zeros (TF's gradient w.r.t. the
  T* input_max_backprop;  // range is identically zero)
  int64_t range_size;
};

// The view is per tensor for Args/Vars and [rows, depth, 1] for PerChannel.
template <typename T>
struct FakeQuantArgs {
  const T* input;
  T* output;
  ChannelView view;
  FakeQuantBounds bounds;
  RangeSource<T> range;
  // The zero-range rule of Vars/PerChannel (contract/fake_quant.h): a channel
  // with min == max == 0 outputs 0.
  bool zero_range_rule;
  // Applied to the input first (activation.h): per tensor, CPU only
  // (FakeQuantWithMovingAverage); TF's FakeQuant ops have none.
  Activation activation = Activation::kLinear;
};

// Gradient. wrt_min/wrt_max may be null (Args has no such outputs); otherwise
// they hold `depth` values, summed in the canonical order of layout.h.
template <typename T>
struct FakeQuantGradientArgs {
  const T* gradients;
  const T* input;
  T* wrt_input;
  T* wrt_min;
  T* wrt_max;
  ChannelView view;
  FakeQuantBounds bounds;
  RangeSource<T> range;
  // The zero-range rule: a channel with min == max == 0 passes the gradient
  // through and adds nothing to its range's sums.
  bool zero_range_rule;
  // The forward's activation (FakeQuantArgs): wrt_input is then the gradient
  // through the activation too. Per tensor without range sums, CPU only.
  Activation activation = Activation::kLinear;
};

// FakeQuantWithMovingAverage, tf_qdq's own op for a training step of
// tf_qdq.keras' ActivationQuantizer: the batch's finite range updates the
// moving average (moving_average.h), then `quantize` (per tensor, the Vars
// formula) runs with its range pointing at grid_min/grid_max.
template <typename T>
struct MovingAverageFakeQuantArgs {
  FakeQuantArgs<T> quantize;
  MovingAverageRange old;
  float momentum;
  bool non_negative;  // the input is never negative: its minimum is taken as 0
  bool symmetric;
  // Host memory: the new state, and the grid in T (the gradient's range).
  MovingAverageRange* updated;
  T* grid_min;
  T* grid_max;
};

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_OP_ARGS_H_
