// Op registrations for tf-qdq: TensorFlow's names under the `TfQdq>` namespace,
// TF's inputs, outputs, attrs and defaults, and TF's shape functions with TF's
// messages in TF's order (docs/semantics.md §2.2, §3.2, §4.1, §5.1, §6).
//
// Deliberate differences (docs/semantics.md §11, "Deviations"):
//  * T is {bfloat16, half, float, double} for every op; FakeQuant gains a `T`
//    attr defaulting to float, so TF-style calls keep working (D1);
//  * FakeQuantWithMinMaxVarsPerChannelGradient accepts rank > 4 in graph mode,
//    as TF's kernel already does in eager mode (D9).
//
// Each FakeQuant op also has a float-only twin, TfQdq>...Float, without `T`,
// for the eager fast path alone (see "FakeQuant" below).
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_qdq {
namespace {

using ::tensorflow::Status;
using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

constexpr int kInt32Max = 2147483647;

// The min/max and axis checks shared by QuantizeAndDequantizeV4 and its
// gradient. `minmax` receives the merged shape of the two range inputs.
Status CheckQdqRangeAndAxis(InferenceContext* c, int data_input, int min_input,
                            ShapeHandle* minmax) {
  int axis;
  TF_RETURN_IF_ERROR(c->GetAttr("axis", &axis));
  const int minmax_rank = (axis == -1) ? 0 : 1;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(min_input), minmax_rank, minmax));
  TF_RETURN_IF_ERROR(c->Merge(c->input(min_input + 1), *minmax, minmax));
  if (axis < -1) {
    return InvalidArgument("axis should be at least -1, got ", axis);
  }
  if (axis != -1) {
    if (axis >= kInt32Max) {
      // Checked before axis + 1 can overflow (CVE-2022-41910, CVE-2023-25668).
      return InvalidArgument("Axis cannot be >= kint32max value, got ", axis);
    }
    ShapeHandle data;
    TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(data_input), axis + 1, &data));
    DimensionHandle depth;
    TF_RETURN_IF_ERROR(c->Merge(c->Dim(*minmax, 0), c->Dim(data, axis), &depth));
  }
  return Status();
}

// The V4 op and the legacy V2 op share attrs, shape function and kernel, as in
// TF; they differ only in their Python gradients (V2: straight-through).
#define TF_QDQ_REGISTER_QDQ_OP(NAME)                                         \
  REGISTER_OP(NAME)                                                          \
      .Input("input: T")                                                     \
      .Input("input_min: T")                                                 \
      .Input("input_max: T")                                                 \
      .Attr("signed_input: bool = true")                                     \
      .Attr("num_bits: int = 8")                                             \
      .Attr("range_given: bool = false")                                     \
      .Output("output: T")                                                   \
      .Attr("T: {bfloat16, half, float, double}")                            \
      .Attr("round_mode: {'HALF_TO_EVEN', 'HALF_UP'} = 'HALF_TO_EVEN'")      \
      .Attr("narrow_range: bool = false")                                    \
      .Attr("axis: int = -1")                                                \
      .SetShapeFn([](InferenceContext* c) {                                  \
        ShapeHandle minmax;                                                  \
        TF_RETURN_IF_ERROR(CheckQdqRangeAndAxis(c, 0, 1, &minmax));          \
        c->set_output(0, c->input(0));                                       \
        return Status();                                                     \
      })

TF_QDQ_REGISTER_QDQ_OP("TfQdq>QuantizeAndDequantizeV4");
TF_QDQ_REGISTER_QDQ_OP("TfQdq>QuantizeAndDequantizeV2");
#undef TF_QDQ_REGISTER_QDQ_OP

REGISTER_OP("TfQdq>QuantizeAndDequantizeV4Grad")
    .Input("gradients: T")
    .Input("input: T")
    .Input("input_min: T")
    .Input("input_max: T")
    .Output("input_backprop: T")
    .Output("input_min_backprop: T")
    .Output("input_max_backprop: T")
    .Attr("T: {bfloat16, half, float, double}")
    .Attr("axis: int = -1")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle minmax;
      TF_RETURN_IF_ERROR(CheckQdqRangeAndAxis(c, 0, 2, &minmax));
      ShapeHandle inputs;
      TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &inputs));
      c->set_output(0, inputs);
      c->set_output(1, minmax);
      c->set_output(2, minmax);
      return Status();
    });

// ---- FakeQuant ------------------------------------------------------------
//
// Each FakeQuant op is registered twice, from one definition:
//  * the public op TfQdq>NAME, whose inputs and outputs have the type attr `T`
//    (graphs, SavedModels and the generated wrappers name it);
//  * TfQdq>NAMEFloat, the same op for float only, with no type attr. Only the
//    eager fast path of tf_qdq/quantization.py runs it, for float32 inputs:
//    TF's eager runtime charges every call for a type attr (0.3-1.4 us of a
//    5-15 us call on 1K values, docs/performance.md), and TF's own FakeQuant
//    ops, float only, have none. It never appears in a graph. Same kernels
//    (fake_quant_kernels.cc), shape function and Python gradient.

Status FakeQuantVarsShape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(::tensorflow::shape_inference::UnchangedShape(c));
  ShapeHandle unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 0, &unused));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 0, &unused));
  return Status();
}

Status FakeQuantVarsGradientShape(InferenceContext* c) {
  ShapeHandle inputs;
  TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &inputs));
  ShapeHandle min_max;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 0, &min_max));
  TF_RETURN_IF_ERROR(c->Merge(min_max, c->input(3), &min_max));
  c->set_output(0, inputs);
  c->set_output(1, min_max);
  c->set_output(2, min_max);
  return Status();
}

Status FakeQuantPerChannelShape(InferenceContext* c) {
  ShapeHandle input, min, max;
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &input));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &min));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &max));
  DimensionHandle unused;
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(input, -1), c->Dim(min, 0), &unused));
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(input, -1), c->Dim(max, 0), &unused));
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(min, 0), c->Dim(max, 0), &unused));
  c->set_output(0, input);
  return Status();
}

Status FakeQuantPerChannelGradientShape(InferenceContext* c) {
  ShapeHandle inputs;
  // TF also caps the rank at 4 here although its kernel takes any rank;
  // we do not, so per-channel Conv3D kernels train under tf.function.
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &inputs));
  TF_RETURN_IF_ERROR(c->Merge(inputs, c->input(1), &inputs));
  // Again after the merge: unknown-rank gradients with a scalar input
  // merge to rank 0, and Dim(-1) below would read out of bounds.
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(inputs, 1, &inputs));
  ShapeHandle last_dim = c->Vector(c->Dim(inputs, -1));
  ShapeHandle min_max;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &min_max));
  TF_RETURN_IF_ERROR(c->Merge(min_max, last_dim, &min_max));
  TF_RETURN_IF_ERROR(c->Merge(c->input(3), min_max, &min_max));
  c->set_output(0, inputs);
  c->set_output(1, min_max);
  c->set_output(2, min_max);
  return Status();
}

// The attrs, inputs and outputs of the FakeQuant ops, whose element type is
// TYPE ("T" or "float"); a string literal, pasted into each spec.
#define TF_QDQ_FAKE_QUANT_ATTRS                                              \
  .Attr("num_bits: int = 8").Attr("narrow_range: bool = false")
#define TF_QDQ_FAKE_QUANT_ARGS_ATTRS                                         \
  .Attr("min: float = -6.0").Attr("max: float = 6.0") TF_QDQ_FAKE_QUANT_ATTRS
#define TF_QDQ_FAKE_QUANT_ARGS_SIGNATURE(TYPE)                               \
  TF_QDQ_FAKE_QUANT_ARGS_ATTRS                                               \
      .Input("inputs: " TYPE)                                                \
      .Output("outputs: " TYPE)
#define TF_QDQ_FAKE_QUANT_ARGS_GRADIENT_SIGNATURE(TYPE)                      \
  TF_QDQ_FAKE_QUANT_ARGS_ATTRS                                               \
      .Input("gradients: " TYPE)                                             \
      .Input("inputs: " TYPE)                                                \
      .Output("backprops: " TYPE)
#define TF_QDQ_FAKE_QUANT_VARS_SIGNATURE(TYPE)                               \
  TF_QDQ_FAKE_QUANT_ATTRS                                                    \
      .Input("inputs: " TYPE)                                                \
      .Input("min: " TYPE)                                                   \
      .Input("max: " TYPE)                                                   \
      .Output("outputs: " TYPE)
#define TF_QDQ_FAKE_QUANT_VARS_GRADIENT_SIGNATURE(TYPE)                      \
  TF_QDQ_FAKE_QUANT_ATTRS                                                    \
      .Input("gradients: " TYPE)                                             \
      .Input("inputs: " TYPE)                                                \
      .Input("min: " TYPE)                                                   \
      .Input("max: " TYPE)                                                   \
      .Output("backprops_wrt_input: " TYPE)                                  \
      .Output("backprop_wrt_min: " TYPE)                                     \
      .Output("backprop_wrt_max: " TYPE)

// T is the last attr of the public op, as before the float-only ops existed:
// the OpDef (attr order included) that graphs and SavedModels hold is
// unchanged.
#define TF_QDQ_REGISTER_FAKE_QUANT_OP(NAME, SIGNATURE, SHAPE_FN)             \
  REGISTER_OP("TfQdq>" NAME)                                                 \
  SIGNATURE("T")                                                             \
      .SetShapeFn(SHAPE_FN)                                                  \
      .Attr("T: {bfloat16, half, float, double} = DT_FLOAT");                \
  REGISTER_OP("TfQdq>" NAME "Float")                                         \
  SIGNATURE("float").SetShapeFn(SHAPE_FN)

TF_QDQ_REGISTER_FAKE_QUANT_OP("FakeQuantWithMinMaxArgs",
                              TF_QDQ_FAKE_QUANT_ARGS_SIGNATURE,
                              ::tensorflow::shape_inference::UnchangedShape);
TF_QDQ_REGISTER_FAKE_QUANT_OP("FakeQuantWithMinMaxArgsGradient",
                              TF_QDQ_FAKE_QUANT_ARGS_GRADIENT_SIGNATURE,
                              ::tensorflow::shape_inference::UnchangedShape);
TF_QDQ_REGISTER_FAKE_QUANT_OP("FakeQuantWithMinMaxVars",
                              TF_QDQ_FAKE_QUANT_VARS_SIGNATURE,
                              FakeQuantVarsShape);
TF_QDQ_REGISTER_FAKE_QUANT_OP("FakeQuantWithMinMaxVarsGradient",
                              TF_QDQ_FAKE_QUANT_VARS_GRADIENT_SIGNATURE,
                              FakeQuantVarsGradientShape);
TF_QDQ_REGISTER_FAKE_QUANT_OP("FakeQuantWithMinMaxVarsPerChannel",
                              TF_QDQ_FAKE_QUANT_VARS_SIGNATURE,
                              FakeQuantPerChannelShape);
TF_QDQ_REGISTER_FAKE_QUANT_OP("FakeQuantWithMinMaxVarsPerChannelGradient",
                              TF_QDQ_FAKE_QUANT_VARS_GRADIENT_SIGNATURE,
                              FakeQuantPerChannelGradientShape);

#undef TF_QDQ_REGISTER_FAKE_QUANT_OP
#undef TF_QDQ_FAKE_QUANT_VARS_GRADIENT_SIGNATURE
#undef TF_QDQ_FAKE_QUANT_VARS_SIGNATURE
#undef TF_QDQ_FAKE_QUANT_ARGS_GRADIENT_SIGNATURE
#undef TF_QDQ_FAKE_QUANT_ARGS_SIGNATURE
#undef TF_QDQ_FAKE_QUANT_ARGS_ATTRS

// tf_qdq's own ops, not TF's: a training step of tf_qdq.keras'
// ActivationQuantizer in one kernel (cc/core/moving_average.h). The input
// goes through `activation` (the ReLU/ReLU6 that TFLite fuses into the op
// before its output quantizer); the batch's finite range updates the (min,
// max, initialized) moving average, which the layer assigns back to its
// variables; the batch is fake-quantized per tensor on the new range
// (grid_min/grid_max, kept for the gradient, which is FakeQuantWithMinMaxVars'
// with respect to the input, through the activation). CPU only: the layer
// builds the equivalent TF-op composition elsewhere.
REGISTER_OP("TfQdq>FakeQuantWithMovingAverage")
    TF_QDQ_FAKE_QUANT_ATTRS
    .Attr("activation: {'linear', 'relu', 'relu6'} = 'linear'")
    .Attr("momentum: float = 0.99")
    .Attr("non_negative: bool = false")
    .Attr("symmetric: bool = false")
    .Attr("T: {bfloat16, half, float, double} = DT_FLOAT")
    .Input("inputs: T")
    .Input("min: float")
    .Input("max: float")
    .Input("initialized: float")
    .Output("outputs: T")
    .Output("new_min: float")
    .Output("new_max: float")
    .Output("new_initialized: float")
    .Output("grid_min: T")
    .Output("grid_max: T")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle unused;
      for (int i = 1; i <= 3; ++i) TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 0, &unused));
      c->set_output(0, c->input(0));
      for (int i = 1; i <= 5; ++i) c->set_output(i, c->Scalar());
      return Status();
    });

REGISTER_OP("TfQdq>FakeQuantWithMovingAverageGradient")
    TF_QDQ_FAKE_QUANT_ATTRS
    .Attr("activation: {'linear', 'relu', 'relu6'} = 'linear'")
    .Attr("T: {bfloat16, half, float, double} = DT_FLOAT")
    .Input("gradients: T")
    .Input("inputs: T")
    .Input("grid_min: T")
    .Input("grid_max: T")
    .Output("backprops: T")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle inputs, unused;
      TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &inputs));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 0, &unused));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 0, &unused));
      c->set_output(0, inputs);
      return Status();
    });

#undef TF_QDQ_FAKE_QUANT_ATTRS

}  // namespace
}  // namespace tf_qdq
