// OpKernels for TfQdq>QuantizeAndDequantizeV4 and its gradient.
//
// Validation follows TF 2.21's kernels check for check, message for message
// (docs/semantics.md §2.3, §3.3), with one deliberate difference: per-channel with
// range_given=True works, with V3's rank and size checks (TF 2.21 rejects every
// input there, docs/semantics.md §2.3 "Consequence").
#include <type_traits>

#include "cc/tf/cpu_functors.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tf_qdq {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::errors::InvalidArgument;

template <typename Device, typename T>
class QuantizeAndDequantizeV4Op : public OpKernel {
 public:
  explicit QuantizeAndDequantizeV4Op(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signed_input", &signed_input_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_bits", &num_bits_));
    OP_REQUIRES(ctx, num_bits_ > 0 && num_bits_ < (signed_input_ ? 62 : 63),
                InvalidArgument("num_bits is out of range: ", num_bits_,
                                " with signed_input_ ", signed_input_ ? 1 : 0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("range_given", &range_given_));
    std::string round_mode;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("round_mode", &round_mode));
    OP_REQUIRES(ctx, round_mode == "HALF_TO_EVEN" || round_mode == "HALF_UP",
                InvalidArgument("Round mode string must be "
                                "'HALF_UP' or "
                                "'HALF_TO_EVEN', is '" + round_mode + "'"));
    round_mode_ = round_mode == "HALF_UP" ? core::RoundMode::kHalfUp
                                          : core::RoundMode::kHalfToEven;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("narrow_range", &narrow_range_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    OP_REQUIRES(ctx, axis_ >= -1,
                InvalidArgument("Axis must be at least -1. Found ", axis_));
    OP_REQUIRES(ctx, axis_ == -1 || axis_ < input.shape().dims(),
                InvalidArgument("Shape must be at least rank ",
                                // TF computes axis + 1 in int32 (it wraps).
                                static_cast<int32_t>(static_cast<uint32_t>(axis_) + 1u),
                                " but is rank ", input.shape().dims()));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &output));

    const Tensor& input_min = ctx->input(1);
    const Tensor& input_max = ctx->input(2);
    const core::ChannelView view = ViewAroundAxis(input.shape(), axis_);
    if (range_given_) {
      if (axis_ == -1) {
        OP_REQUIRES(ctx, input_min.dims() == 0,
                    InvalidArgument("input_min must be a scalar."));
        OP_REQUIRES(ctx, input_max.dims() == 0,
                    InvalidArgument("input_max must be a scalar."));
        // The values are on the host only for the CPU kernel; the GPU kernel
        // keeps them in device memory and outputs NaN for an invalid range.
        if (std::is_same<Device, CpuTag>::value) {
          const auto min_value = HostValue<T>(input_min);
          const auto max_value = HostValue<T>(input_max);
          OP_REQUIRES(ctx, min_value <= max_value,
                      InvalidArgument("Invalid range: input_min ", min_value,
                                      " > input_max ", max_value));
        }
      } else {
        CheckChannelRange(ctx, input_min, "input_min_tensor", view);
        if (!ctx->status().ok()) return;
        CheckChannelRange(ctx, input_max, "input_max_tensor", view);
        if (!ctx->status().ok()) return;
      }
    }
    // Without a given range, input_min/input_max are ignored, as in TF.
    core::QdqForwardArgs<CoreType<T>> args;
    args.input = CoreData<T>(input);
    args.output = CoreData<T>(output);
    args.view = view;
    args.bounds = core::ComputeQdqBounds(signed_input_, num_bits_, narrow_range_);
    args.round_mode = round_mode_;
    args.range_given = range_given_;
    args.check_range_order = range_given_ && axis_ == -1;
    args.input_min = range_given_ ? CoreData<T>(input_min) : nullptr;
    args.input_max = range_given_ ? CoreData<T>(input_max) : nullptr;
    OP_REQUIRES_OK(ctx, functor::QdqForward<Device, CoreType<T>>()(ctx, args));
  }

 private:
  // QuantizeAndDequantizeV3's checks of a per-channel given range.
  void CheckChannelRange(OpKernelContext* ctx, const Tensor& range,
                         const char* name,
                         const core::ChannelView& view) {
    OP_REQUIRES(ctx, range.dims() == 1,
                InvalidArgument("Shape must be rank 1 for ", name,
                                " when the axis is specified"));
    OP_REQUIRES(ctx, range.dim_size(0) == view.depth,
                InvalidArgument(name, " has incorrect size, was ",
                                range.dim_size(0), " expected ", view.depth,
                                " to match dim ", axis_, " of the input ",
                                range.shape().DebugString()));
  }

  int num_bits_;
  int axis_;
  core::RoundMode round_mode_;
  bool signed_input_;
  bool range_given_;
  bool narrow_range_;
};

template <typename Device, typename T>
class QuantizeAndDequantizeV4GradOp : public OpKernel {
 public:
  explicit QuantizeAndDequantizeV4GradOp(OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradients = ctx->input(0);
    const Tensor& input = ctx->input(1);
    Tensor* input_backprop = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &input_backprop));
    OP_REQUIRES(ctx, axis_ >= -1,
                InvalidArgument("Axis must be at least -1. Found ", axis_));
    OP_REQUIRES(ctx, axis_ == -1 || axis_ < input.shape().dims(),
                InvalidArgument(
                    "Axis should be -1 or 0 or a positive value less than ",
                    input.shape().dims(), "but given axis value was ", axis_));
    OP_REQUIRES(ctx, input.IsSameSize(gradients),
                InvalidArgument("gradient and input must be the same size"));
    const core::ChannelView view = ViewAroundAxis(input.shape(), axis_);
    const Tensor& input_min = ctx->input(2);
    const Tensor& input_max = ctx->input(3);
    OP_REQUIRES(ctx, input_min.dims() == 0 || input_min.dims() == 1,
                InvalidArgument("Input min tensor must have dimension 0 or 1. "
                                "Received ", input_min.dims(), "."));
    OP_REQUIRES(ctx, input_max.dims() == 0 || input_max.dims() == 1,
                InvalidArgument("Input max tensor must have dimension 0 or 1. "
                                "Received ", input_max.dims(), "."));
    if (axis_ != -1) {
      OP_REQUIRES(ctx, input_min.dims() == 1,
                  InvalidArgument("Shape must be rank 1 for input_min_tensor "
                                  "when the axis is specified"));
      OP_REQUIRES(ctx, input_max.dims() == 1,
                  InvalidArgument("Shape must be rank 1 for input_max_tensor "
                                  "when the axis is specified"));
      OP_REQUIRES(ctx, input_min.dim_size(0) == view.depth,
                  InvalidArgument("min has incorrect size, expected ",
                                  view.depth, " was ", input_min.dim_size(0)));
      OP_REQUIRES(ctx, input_max.dim_size(0) == view.depth,
                  InvalidArgument("max has incorrect size, expected ",
                                  view.depth, " was ", input_max.dim_size(0)));
    }
    Tensor* input_min_backprop = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, input_min.shape(),
                                             &input_min_backprop));
    Tensor* input_max_backprop = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, input_min.shape(),
                                             &input_max_backprop));
    if (axis_ == -1) {
      OP_REQUIRES(ctx, input_min.dims() == 0,
                  InvalidArgument("input_min must be a scalar if axis is "
                                  "unspecified"));
      OP_REQUIRES(ctx, input_max.dims() == 0,
                  InvalidArgument("input_max must be a scalar if axis is "
                                  "unspecified"));
    }
    core::QdqGradientArgs<CoreType<T>> args;
    args.gradients = CoreData<T>(gradients);
    args.input = CoreData<T>(input);
    args.input_backprop = CoreData<T>(input_backprop);
    args.view = view;
    args.input_min = CoreData<T>(input_min);
    args.input_max = CoreData<T>(input_max);
    args.input_min_backprop = CoreData<T>(input_min_backprop);
    args.input_max_backprop = CoreData<T>(input_max_backprop);
    args.range_size = input_min.NumElements();
    OP_REQUIRES_OK(ctx, functor::QdqGradient<Device, CoreType<T>>()(ctx, args));
  }

 private:
  int axis_;
};

#define TF_QDQ_REGISTER_QDQ(DEVICE, DEVICE_TYPE, T)                          \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>QuantizeAndDequantizeV4")            \
                              .Device(DEVICE)                              \
                              .TypeConstraint<T>("T"),                     \
                          QuantizeAndDequantizeV4Op<DEVICE_TYPE, T>);      \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>QuantizeAndDequantizeV2")            \
                              .Device(DEVICE)                              \
                              .TypeConstraint<T>("T"),                     \
                          QuantizeAndDequantizeV4Op<DEVICE_TYPE, T>);      \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>QuantizeAndDequantizeV4Grad")        \
                              .Device(DEVICE)                              \
                              .TypeConstraint<T>("T"),                     \
                          QuantizeAndDequantizeV4GradOp<DEVICE_TYPE, T>);

#define TF_QDQ_REGISTER_QDQ_CPU(T) TF_QDQ_REGISTER_QDQ(::tensorflow::DEVICE_CPU, CpuTag, T)
TF_QDQ_REGISTER_QDQ_CPU(float);
TF_QDQ_REGISTER_QDQ_CPU(double);
TF_QDQ_REGISTER_QDQ_CPU(Eigen::half);
TF_QDQ_REGISTER_QDQ_CPU(Eigen::bfloat16);
#undef TF_QDQ_REGISTER_QDQ_CPU

#if GOOGLE_CUDA
#define TF_QDQ_REGISTER_QDQ_GPU(T) TF_QDQ_REGISTER_QDQ(::tensorflow::DEVICE_GPU, GpuTag, T)
TF_QDQ_REGISTER_QDQ_GPU(float);
TF_QDQ_REGISTER_QDQ_GPU(double);
TF_QDQ_REGISTER_QDQ_GPU(Eigen::half);
TF_QDQ_REGISTER_QDQ_GPU(Eigen::bfloat16);
#undef TF_QDQ_REGISTER_QDQ_GPU
#endif  // GOOGLE_CUDA

}  // namespace tf_qdq
