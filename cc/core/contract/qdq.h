// The contract of QuantizeAndDequantizeV4 (V2 and V3 share it) and of
// QuantizeAndDequantizeV4Grad, stated once: the checks of TF 2.21's kernels in
// their order and with their messages (docs/semantics.md §2.3, §3.3), and the
// arguments the implementations receive. The TF kernels, the core module and
// the XLA lowering all enforce it (contract/check.h).
//
// One deliberate difference from TF: per channel with range_given=True works,
// with V3's rank and size checks (TF 2.21's V2/V4 reject every such input,
// docs/semantics.md §2.3 "Consequence").
#ifndef TF_QDQ_CC_CORE_CONTRACT_QDQ_H_
#define TF_QDQ_CC_CORE_CONTRACT_QDQ_H_

#include <cstdint>
#include <string>

#include "cc/core/contract/check.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

struct QdqAttrs {
  bool signed_input;
  int num_bits;
  bool range_given;
  RoundMode round_mode;
  bool narrow_range;
  int axis;
};

// The kernel's attr checks (at construction in TF). round_mode is the attr's
// string; on success *attrs holds the parsed mode.
inline void CheckQdqAttrs(Checker& check, const std::string& round_mode, QdqAttrs* attrs) {
  const int num_bits = attrs->num_bits;
  const bool signed_input = attrs->signed_input;
  check.Require(num_bits > 0 && num_bits < (signed_input ? 62 : 63), [&] {
    return Cat("num_bits is out of range: ", num_bits, " with signed_input_ ",
               signed_input ? 1 : 0);
  });
  check.Require(round_mode == "HALF_TO_EVEN" || round_mode == "HALF_UP", [&] {
    return Cat("Round mode string must be 'HALF_UP' or 'HALF_TO_EVEN', is '", round_mode, "'");
  });
  attrs->round_mode = round_mode == "HALF_UP" ? RoundMode::kHalfUp : RoundMode::kHalfToEven;
}

// TF computes axis + 1 in int32 for this message (it wraps).
inline std::string AxisPlusOne(int axis) {
  return Piece(static_cast<int>(static_cast<int32_t>(static_cast<uint32_t>(axis) + 1u)));
}

// V3's checks of a per-channel given range.
inline void CheckQdqChannelRange(Checker& check, const ShapeView& range, const char* name,
                                 const ShapeView& input, int axis) {
  check.RequireRank(range, 1, [&](const std::string&) {
    return Cat("Shape must be rank 1 for ", name, " when the axis is specified");
  });
  check.RequireSize(range, input, axis, [&](const std::string& size, const std::string& depth) {
    return Cat(name, " has incorrect size, was ", size, " expected ", depth, " to match dim ",
               axis, " of the input ", ShapeString(range));
  });
}

// QuantizeAndDequantizeV4: input, input_min, input_max.
inline void CheckQdqForwardInputs(Checker& check, const QdqAttrs& a, const ShapeView& input,
                                  const ShapeView& input_min, const ShapeView& input_max) {
  check.Require(a.axis >= -1, [&] { return Cat("Axis must be at least -1. Found ", a.axis); });
  if (a.axis != -1) {
    check.RequireAxisInRank(input, a.axis, [&](const std::string& rank) {
      return Cat("Shape must be at least rank ", AxisPlusOne(a.axis), " but is rank ", rank);
    });
  }
  if (!a.range_given) return;  // input_min/input_max are ignored, as in TF
  if (a.axis == -1) {
    check.RequireRank(input_min, 0, [](const std::string&) { return Cat("input_min must be a scalar."); });
    check.RequireRank(input_max, 0, [](const std::string&) { return Cat("input_max must be a scalar."); });
  } else {
    CheckQdqChannelRange(check, input_min, "input_min_tensor", input, a.axis);
    CheckQdqChannelRange(check, input_max, "input_max_tensor", input, a.axis);
  }
}

// Per tensor with a given range, TF reads min/max on the host and rejects
// min > max (and NaN). Only where the values are on the host: the GPU kernel
// keeps them in device memory and outputs NaN instead (docs/semantics.md).
inline bool QdqChecksRangeOrder(const QdqAttrs& a) { return a.range_given && a.axis == -1; }

template <typename C>
void CheckQdqRangeOrder(Checker& check, C min_value, C max_value) {
  check.Require(min_value <= max_value, [&] {
    return Cat("Invalid range: input_min ", min_value, " > input_max ", max_value);
  });
}

// QuantizeAndDequantizeV4Grad: gradients, input, input_min, input_max.
inline void CheckQdqGradientInputs(Checker& check, int axis, const ShapeView& gradients,
                                   const ShapeView& input, const ShapeView& input_min,
                                   const ShapeView& input_max) {
  check.Require(axis >= -1, [&] { return Cat("Axis must be at least -1. Found ", axis); });
  if (axis != -1) {
    check.RequireAxisInRank(input, axis, [&](const std::string& rank) {
      return Cat("Axis should be -1 or 0 or a positive value less than ", rank,
                 "but given axis value was ", axis);
    });
  }
  check.RequireSameShape(gradients, input, [] { return Cat("gradient and input must be the same size"); });
  for (const auto& [range, label] : {std::make_pair(&input_min, "min"), std::make_pair(&input_max, "max")}) {
    check.Require(!range->known_rank() || range->rank == 0 || range->rank == 1, [&] {
      return Cat("Input ", label, " tensor must have dimension 0 or 1. Received ", range->rank, ".");
    });
  }
  if (axis != -1) {
    check.RequireRank(input_min, 1, [](const std::string&) {
      return Cat("Shape must be rank 1 for input_min_tensor when the axis is specified");
    });
    check.RequireRank(input_max, 1, [](const std::string&) {
      return Cat("Shape must be rank 1 for input_max_tensor when the axis is specified");
    });
    check.RequireSize(input_min, input, axis, [](const std::string& size, const std::string& depth) {
      return Cat("min has incorrect size, expected ", depth, " was ", size);
    });
    check.RequireSize(input_max, input, axis, [](const std::string& size, const std::string& depth) {
      return Cat("max has incorrect size, expected ", depth, " was ", size);
    });
  } else {
    check.RequireRank(input_min, 0, [](const std::string&) {
      return Cat("input_min must be a scalar if axis is unspecified");
    });
    check.RequireRank(input_max, 0, [](const std::string&) {
      return Cat("input_max must be a scalar if axis is unspecified");
    });
  }
}

// What the implementations receive, from checked inputs. `view` is the input
// around `axis` (-1: per tensor); pointers are into the op's device memory.
template <typename T>
QdqForwardArgs<T> MakeQdqForwardArgs(const QdqAttrs& a, const ChannelView& view, const T* input,
                                     T* output, const T* input_min, const T* input_max) {
  QdqForwardArgs<T> args;
  args.input = input;
  args.output = output;
  args.view = view;
  args.bounds = ComputeQdqBounds(a.signed_input, a.num_bits, a.narrow_range);
  args.round_mode = a.round_mode;
  args.range_given = a.range_given;
  args.input_min = a.range_given ? input_min : nullptr;
  args.input_max = a.range_given ? input_max : nullptr;
  args.check_range_order = QdqChecksRangeOrder(a);
  return args;
}

template <typename T>
QdqGradientArgs<T> MakeQdqGradientArgs(const ChannelView& view, const T* gradients,
                                       const T* input, const T* input_min, const T* input_max,
                                       int64_t range_size, T* input_backprop,
                                       T* input_min_backprop, T* input_max_backprop) {
  QdqGradientArgs<T> args;
  args.gradients = gradients;
  args.input = input;
  args.input_backprop = input_backprop;
  args.view = view;
  args.input_min = input_min;
  args.input_max = input_max;
  args.input_min_backprop = input_min_backprop;
  args.input_max_backprop = input_max_backprop;
  args.range_size = range_size;
  return args;
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CONTRACT_QDQ_H_
