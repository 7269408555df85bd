// The contract of FakeQuantWithMinMax{Args,Vars,VarsPerChannel} and their
// gradients, stated once: the checks of TF 2.21's kernels in their order and
// with their messages (docs/semantics.md §4.2, §5.2, §6), which formula each op
// uses, and the arguments the implementations receive. The TF kernels, the
// core module and the XLA lowering all enforce it (contract/check.h).
//
// One deliberate difference from TF: a scalar input to the per-channel ops is
// an InvalidArgument (TF reads the last dimension first and aborts).
#ifndef TF_QDQ_CC_CORE_CONTRACT_FAKE_QUANT_H_
#define TF_QDQ_CC_CORE_CONTRACT_FAKE_QUANT_H_

#include <cstdint>
#include <string>

#include "cc/core/contract/check.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

enum class FakeQuantOp : int { kArgs = 0, kVars = 1, kVarsPerChannel = 2 };

// The formula variant of each op, as TF's kernels compute it:
//  * Args and PerChannel multiply by the inverse scale, Vars divides by the
//    scale (docs/semantics.md §4.1): near grid ties the two differ in the last
//    bit, so each op keeps its own;
//  * Vars and PerChannel have the zero-range rule: a channel whose min and max
//    are both 0 outputs 0 and passes its gradient through (Args cannot have
//    such a range: its attrs must satisfy min < max);
//  * Args has no min/max gradient outputs.
constexpr GridStep GridStepOf(FakeQuantOp op) {
  return op == FakeQuantOp::kVars ? GridStep::kDivideByScale : GridStep::kMultiplyByInverse;
}
constexpr bool HasZeroRangeRule(FakeQuantOp op) { return op != FakeQuantOp::kArgs; }
constexpr bool HasRangeGradients(FakeQuantOp op) { return op != FakeQuantOp::kArgs; }

// num_bits and narrow_range, checked the same way by every op (after Args'
// min/max, in TF's constructor order).
inline void CheckFakeQuantBits(Checker& check, int num_bits) {
  check.Require(num_bits >= 2 && num_bits <= 16,
                [] { return Cat("num_bits must be between 2 and 16, inclusive"); });
}

// Args: min and max are float attrs.
inline void CheckFakeQuantArgsAttrs(Checker& check, float min, float max, int num_bits) {
  check.Require(min < max, [&] { return Cat("min has to be smaller than max, was: ", min, " >= ", max); });
  CheckFakeQuantBits(check, num_bits);
}

// The attr checks of op `op` (min and max are Args' attrs, unused otherwise).
inline void CheckFakeQuantAttrs(Checker& check, FakeQuantOp op, float min, float max,
                                int num_bits) {
  if (op == FakeQuantOp::kArgs) return CheckFakeQuantArgsAttrs(check, min, max, num_bits);
  CheckFakeQuantBits(check, num_bits);
}

// Vars: min and max of rank 0. PerChannel: inputs of rank >= 1 (the last axis
// is the channel), min and max of rank 1 and its size.
inline void CheckFakeQuantRanges(Checker& check, FakeQuantOp op, const ShapeView& inputs,
                                 const ShapeView& min, const ShapeView& max) {
  if (op == FakeQuantOp::kArgs) return;
  if (op == FakeQuantOp::kVars) {
    for (const auto& [range, name] : {std::make_pair(&min, "min"), std::make_pair(&max, "max")}) {
      check.RequireRank(*range, 0, [&](const std::string& rank) {
        return Cat("`", name, "` must be rank 0 but is rank ", rank);
      });
    }
    return;
  }
  check.RequireAxisInRank(inputs, 0, [](const std::string& rank) {
    return Cat("inputs must be at least rank 1 for a per-channel op, but is rank ", rank);
  });
  for (const auto& [range, name] : {std::make_pair(&min, "min"), std::make_pair(&max, "max")}) {
    check.RequireRank(*range, 1, [&](const std::string& rank) {
      return Cat("`", name, "` must be rank 1 but is rank ", rank);
    });
    // The last axis: known only with the rank (else deferred, as axis -1).
    const int64_t last = inputs.known_rank() ? inputs.rank - 1 : -1;
    check.RequireSize(*range, inputs, last, [&](const std::string& size, const std::string& depth) {
      return Cat(name, " has incorrect size, expected ", depth, " was ", size);
    });
  }
}

inline void CheckFakeQuantForwardInputs(Checker& check, FakeQuantOp op, const ShapeView& inputs,
                                        const ShapeView& min, const ShapeView& max) {
  CheckFakeQuantRanges(check, op, inputs, min, max);
}

// Gradients. Args reports a shape mismatch as TF's BinaryElementWiseOp does,
// naming the node and the op type.
inline void CheckFakeQuantGradientInputs(Checker& check, FakeQuantOp op, const ShapeView& gradients,
                                         const ShapeView& inputs, const ShapeView& min,
                                         const ShapeView& max, const std::string& node_name,
                                         const std::string& op_type) {
  if (op == FakeQuantOp::kArgs) {
    check.RequireSameShape(gradients, inputs, [&] {
      return Cat("Inputs to operation ", node_name, " of type ", op_type,
                 " must have the same size and shape.  Input 0: ", ShapeString(gradients),
                 " != input 1: ", ShapeString(inputs));
    });
    return;
  }
  check.RequireSameShape(gradients, inputs,
                         [] { return Cat("gradient and input must be the same size"); });
  CheckFakeQuantRanges(check, op, inputs, min, max);
}

// The channel view of each op's (checked) input.
inline ChannelView FakeQuantView(FakeQuantOp op, const ShapeView& inputs) {
  return ViewAroundAxis(inputs, op == FakeQuantOp::kVarsPerChannel ? inputs.rank - 1 : -1);
}

// The range: Args' attrs, or the min/max tensors (in the op's device memory).
template <typename T>
RangeSource<T> AttrRange(float min, float max) {
  using C = ComputeType<T>;
  return {nullptr, nullptr, static_cast<C>(min), static_cast<C>(max)};
}
template <typename T>
RangeSource<T> TensorRange(const T* min, const T* max) {
  return {min, max, 0, 0};
}

template <typename T>
FakeQuantArgs<T> MakeFakeQuantArgs(FakeQuantOp op, int num_bits, bool narrow_range,
                                   const ChannelView& view, const RangeSource<T>& range,
                                   const T* input, T* output) {
  FakeQuantArgs<T> args;
  args.input = input;
  args.output = output;
  args.view = view;
  args.bounds = ComputeFakeQuantBounds(num_bits, narrow_range);
  args.range = range;
  args.zero_range_rule = HasZeroRangeRule(op);
  return args;
}

// wrt_min/wrt_max are ignored (null in the args) for Args; null wrt_min and
// wrt_max (per tensor only) skip the range sums.
template <typename T>
FakeQuantGradientArgs<T> MakeFakeQuantGradientArgs(FakeQuantOp op, int num_bits,
                                                   bool narrow_range, const ChannelView& view,
                                                   const RangeSource<T>& range,
                                                   const T* gradients, const T* input,
                                                   T* wrt_input, T* wrt_min, T* wrt_max) {
  FakeQuantGradientArgs<T> args;
  args.gradients = gradients;
  args.input = input;
  args.wrt_input = wrt_input;
  args.wrt_min = HasRangeGradients(op) ? wrt_min : nullptr;
  args.wrt_max = HasRangeGradients(op) ? wrt_max : nullptr;
  args.view = view;
  args.bounds = ComputeFakeQuantBounds(num_bits, narrow_range);
  args.range = range;
  args.zero_range_rule = HasZeroRangeRule(op);
  return args;
}

// ---- FakeQuantWithMovingAverage: tf_qdq's own op (op_args.h) ----------------
// Built only by tf_qdq.keras' ActivationQuantizer, whose own checks come first;
// these keep a hand-built graph from reading out of bounds or past [0, 1].

inline void CheckMovingAverageAttrs(Checker& check, int num_bits, float momentum) {
  CheckFakeQuantBits(check, num_bits);
  check.Require(momentum >= 0.0f && momentum <= 1.0f,
                [&] { return Cat("momentum must be in [0, 1], got ", momentum); });
}

// The `activation` attr of the op and of its gradient (the op registration
// allows only these three names).
inline Activation ActivationNamed(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "relu6") return Activation::kRelu6;
  return Activation::kLinear;
}

inline void CheckMovingAverageInputs(Checker& check, const ShapeView& min, const ShapeView& max,
                                     const ShapeView& initialized) {
  for (const auto& [state, name] : {std::make_pair(&min, "min"), std::make_pair(&max, "max"),
                                    std::make_pair(&initialized, "initialized")}) {
    check.RequireRank(*state, 0, [&](const std::string& rank) {
      return Cat("`", name, "` must be rank 0 but is rank ", rank);
    });
  }
}

// grid_min/grid_max: where the op stores the grid it quantizes on (host memory).
template <typename T>
MovingAverageFakeQuantArgs<T> MakeMovingAverageFakeQuantArgs(
    int num_bits, bool narrow_range, Activation activation, float momentum, bool non_negative,
    bool symmetric, int64_t size, const MovingAverageRange& old, const T* input, T* output,
    MovingAverageRange* updated, T* grid_min, T* grid_max) {
  MovingAverageFakeQuantArgs<T> args;
  args.quantize = MakeFakeQuantArgs<T>(FakeQuantOp::kVars, num_bits, narrow_range,
                                       PerTensorView(size), TensorRange<T>(grid_min, grid_max),
                                       input, output);
  args.quantize.activation = activation;
  args.old = old;
  args.momentum = momentum;
  args.non_negative = non_negative;
  args.symmetric = symmetric;
  args.updated = updated;
  args.grid_min = grid_min;
  args.grid_max = grid_max;
  return args;
}

// Its gradient with respect to the input (per tensor, no range sums), from
// the grid the forward stored.
template <typename T>
FakeQuantGradientArgs<T> MakeMovingAverageGradientArgs(int num_bits, bool narrow_range,
                                                      Activation activation, int64_t size,
                                                      const T* grid_min, const T* grid_max,
                                                      const T* gradients, const T* input,
                                                      T* wrt_input) {
  FakeQuantGradientArgs<T> args = MakeFakeQuantGradientArgs<T>(
      FakeQuantOp::kVars, num_bits, narrow_range, PerTensorView(size),
      TensorRange<T>(grid_min, grid_max), gradients, input, wrt_input, nullptr, nullptr);
  args.activation = activation;
  return args;
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CONTRACT_FAKE_QUANT_H_
