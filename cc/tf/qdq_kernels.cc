// OpKernels for TfQdq>QuantizeAndDequantizeV4 (and V2) and its gradient: read
// the attrs, enforce the op's contract (cc/core/contract/qdq.h), allocate, and
// dispatch to the device functor.
#include <type_traits>

#include "cc/core/contract/qdq.h"
#include "cc/tf/contract_adapter.h"
#include "cc/tf/cpu_functors.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tf_qdq {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

template <typename Device, typename T>
class QuantizeAndDequantizeV4Op : public OpKernel {
 public:
  explicit QuantizeAndDequantizeV4Op(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string round_mode;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("signed_input", &attrs_.signed_input));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &attrs_.axis));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_bits", &attrs_.num_bits));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("range_given", &attrs_.range_given));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("round_mode", &round_mode));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("narrow_range", &attrs_.narrow_range));
    core::Checker check;
    core::CheckQdqAttrs(check, round_mode, &attrs_);
    OP_REQUIRES_OK(ctx, ToStatus(check));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& input_min = ctx->input(1);
    const Tensor& input_max = ctx->input(2);
    const TfShape input_shape(0, input.shape()), min_shape(1, input_min.shape()),
        max_shape(2, input_max.shape());
    core::Checker check;
    core::CheckQdqForwardInputs(check, attrs_, input_shape, min_shape, max_shape);
    // The range's values are on the host only for the CPU kernel.
    if (check.ok() && core::QdqChecksRangeOrder(attrs_) && std::is_same<Device, CpuTag>::value) {
      core::CheckQdqRangeOrder(check, HostValue<T>(input_min), HostValue<T>(input_max));
    }
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &output));
    const auto args = core::MakeQdqForwardArgs<CoreType<T>>(
        attrs_, ViewOf(input_shape, attrs_.axis), CoreData<T>(input), CoreData<T>(output),
        CoreData<T>(input_min), CoreData<T>(input_max));
    OP_REQUIRES_OK(ctx, functor::QdqForward<Device, CoreType<T>>()(ctx, args));
  }

 private:
  core::QdqAttrs attrs_;
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
    const Tensor& input_min = ctx->input(2);
    const Tensor& input_max = ctx->input(3);
    const TfShape gradients_shape(0, gradients.shape()), input_shape(1, input.shape()),
        min_shape(2, input_min.shape()), max_shape(3, input_max.shape());
    core::Checker check;
    core::CheckQdqGradientInputs(check, axis_, gradients_shape, input_shape, min_shape,
                                 max_shape);
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor *input_backprop = nullptr, *input_min_backprop = nullptr,
           *input_max_backprop = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &input_backprop));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, input_min.shape(), &input_min_backprop));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, input_min.shape(), &input_max_backprop));
    const auto args = core::MakeQdqGradientArgs<CoreType<T>>(
        ViewOf(input_shape, axis_), CoreData<T>(gradients), CoreData<T>(input),
        CoreData<T>(input_min), CoreData<T>(input_max), input_min.NumElements(),
        CoreData<T>(input_backprop), CoreData<T>(input_min_backprop),
        CoreData<T>(input_max_backprop));
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
