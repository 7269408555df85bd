// OpKernels for the TfQdq>FakeQuantWithMinMax{Args,Vars,VarsPerChannel} ops
// and their gradients.
//
// Validation follows TF 2.21 (docs/semantics.md §4.2, §5.2, §6), except that a scalar input
// to the per-channel ops is an InvalidArgument (TF aborts the process).
// min/max tensors are read by the functor on the op's device: these kernels
// look only at their shapes.
#include <string>

#include "cc/tf/cpu_functors.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tf_qdq {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Status;
using ::tensorflow::Tensor;
using ::tensorflow::errors::InvalidArgument;

namespace {

// num_bits and narrow_range, read and checked the same way by every op.
Status ReadFakeQuantBounds(OpKernelConstruction* ctx,
                           core::FakeQuantBounds* bounds) {
  int num_bits;
  bool narrow_range;
  TF_RETURN_IF_ERROR(ctx->GetAttr("num_bits", &num_bits));
  if (!(num_bits >= 2 && num_bits <= 16)) {
    return InvalidArgument("num_bits must be between 2 and 16, inclusive");
  }
  TF_RETURN_IF_ERROR(ctx->GetAttr("narrow_range", &narrow_range));
  *bounds = core::ComputeFakeQuantBounds(num_bits, narrow_range);
  return Status();
}

// `min`/`max` of the Vars ops: rank 0. Of the PerChannel ops: rank 1, `depth`.
Status CheckScalarRange(const Tensor& t, const char* name) {
  if (t.dims() != 0) {
    return InvalidArgument("`", name, "` must be rank 0 but is rank ", t.dims());
  }
  return Status();
}

Status CheckChannelRange(const Tensor& t, const char* name, int64_t depth) {
  if (t.dims() != 1) {
    return InvalidArgument("`", name, "` must be rank 1 but is rank ", t.dims());
  }
  if (t.dim_size(0) != depth) {
    return InvalidArgument(name, " has incorrect size, expected ", depth,
                           " was ", t.dim_size(0));
  }
  return Status();
}

Status CheckSameShape(const Tensor& gradients, const Tensor& inputs) {
  if (!inputs.IsSameSize(gradients)) {
    return InvalidArgument("gradient and input must be the same size");
  }
  return Status();
}

// The per-channel ops take the last axis as the channel: [rows, depth, 1].
// TF reads dim_size(rank - 1) before any check and aborts on a scalar.
Status PerChannelView(const Tensor& inputs, core::ChannelView* view) {
  if (inputs.dims() < 1) {
    return InvalidArgument(
        "inputs must be at least rank 1 for a per-channel op, but is rank 0");
  }
  *view = ViewAroundAxis(inputs.shape(), inputs.dims() - 1);
  return Status();
}

template <typename T>
core::RangeSource<CoreType<T>> TensorRange(const Tensor& min, const Tensor& max) {
  return {CoreData<T>(min), CoreData<T>(max), 0, 0};
}

}  // namespace

// ---- Args: min/max are float attrs ------------------------------------------

template <typename Device, typename T>
class FakeQuantArgsOpBase : public OpKernel {
 public:
  explicit FakeQuantArgsOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("min", &min_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("max", &max_));
    OP_REQUIRES(ctx, min_ < max_,
                InvalidArgument("min has to be smaller than max, was: ", min_,
                                " >= ", max_));
    OP_REQUIRES_OK(ctx, ReadFakeQuantBounds(ctx, &bounds_));
  }

 protected:
  core::RangeSource<CoreType<T>> AttrRange() const {
    using C = core::ComputeType<CoreType<T>>;
    return {nullptr, nullptr, static_cast<C>(min_), static_cast<C>(max_)};
  }

  float min_;
  float max_;
  core::FakeQuantBounds bounds_;
};

template <typename Device, typename T>
class FakeQuantWithMinMaxArgsOp : public FakeQuantArgsOpBase<Device, T> {
 public:
  using FakeQuantArgsOpBase<Device, T>::FakeQuantArgsOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& inputs = ctx->input(0);
    Tensor* outputs = nullptr;
    // Like TF's UnaryElementWiseOp, reuse the input buffer when possible.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            {0}, 0, inputs.shape(), &outputs));
    core::FakeQuantArgs<CoreType<T>> args;
    args.input = CoreData<T>(inputs);
    args.output = CoreData<T>(outputs);
    args.view = core::PerTensorView(inputs.NumElements());
    args.bounds = this->bounds_;
    args.range = this->AttrRange();
    args.zero_range_outputs_zero = false;  // min < max: cannot happen
    OP_REQUIRES_OK(ctx, (functor::FakeQuantForward<Device, core::GridStep::kMultiplyByInverse,
                                                   CoreType<T>>()(ctx, args)));
  }
};

template <typename Device, typename T>
class FakeQuantWithMinMaxArgsGradientOp : public FakeQuantArgsOpBase<Device, T> {
 public:
  using FakeQuantArgsOpBase<Device, T>::FakeQuantArgsOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradients = ctx->input(0);
    const Tensor& inputs = ctx->input(1);
    // TF's BinaryElementWiseOp message, with this op's own type string.
    OP_REQUIRES(ctx, inputs.IsSameSize(gradients),
                InvalidArgument("Inputs to operation ", this->name(), " of type ",
                                this->type_string(),
                                " must have the same size and shape.  Input 0: ",
                                gradients.shape().DebugString(), " != input 1: ",
                                inputs.shape().DebugString()));
    Tensor* backprops = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            {0, 1}, 0, inputs.shape(), &backprops));
    core::FakeQuantGradientArgs<CoreType<T>> args;
    args.gradients = CoreData<T>(gradients);
    args.input = CoreData<T>(inputs);
    args.wrt_input = CoreData<T>(backprops);
    args.wrt_min = args.wrt_max = nullptr;
    args.view = core::PerTensorView(inputs.NumElements());
    args.bounds = this->bounds_;
    args.range = this->AttrRange();
    args.zero_range_passes_through = false;
    OP_REQUIRES_OK(ctx, (functor::FakeQuantGradient<Device, CoreType<T>>()(ctx, args)));
  }
};

// ---- Vars and VarsPerChannel: min/max are tensors ----------------------------

// Forward. kPerChannel selects the PerChannel op's checks, view and grid step
// (Vars divides by the scale, PerChannel multiplies by its inverse).
template <typename Device, typename T, bool kPerChannel>
class FakeQuantWithMinMaxVarsOp : public OpKernel {
 public:
  explicit FakeQuantWithMinMaxVarsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadFakeQuantBounds(ctx, &bounds_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& inputs = ctx->input(0);
    const Tensor& min = ctx->input(1);
    const Tensor& max = ctx->input(2);
    core::ChannelView view;
    if (kPerChannel) {
      OP_REQUIRES_OK(ctx, PerChannelView(inputs, &view));
      OP_REQUIRES_OK(ctx, CheckChannelRange(min, "min", view.depth));
      OP_REQUIRES_OK(ctx, CheckChannelRange(max, "max", view.depth));
    } else {
      OP_REQUIRES_OK(ctx, CheckScalarRange(min, "min"));
      OP_REQUIRES_OK(ctx, CheckScalarRange(max, "max"));
      view = core::PerTensorView(inputs.NumElements());
    }
    Tensor* outputs = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, inputs.shape(), &outputs));
    core::FakeQuantArgs<CoreType<T>> args;
    args.input = CoreData<T>(inputs);
    args.output = CoreData<T>(outputs);
    args.view = view;
    args.bounds = bounds_;
    args.range = TensorRange<T>(min, max);
    args.zero_range_outputs_zero = true;
    constexpr core::GridStep kStep = kPerChannel
                                         ? core::GridStep::kMultiplyByInverse
                                         : core::GridStep::kDivideByScale;
    OP_REQUIRES_OK(ctx, (functor::FakeQuantForward<Device, kStep, CoreType<T>>()(ctx, args)));
  }

 private:
  core::FakeQuantBounds bounds_;
};

template <typename Device, typename T, bool kPerChannel>
class FakeQuantWithMinMaxVarsGradientOp : public OpKernel {
 public:
  explicit FakeQuantWithMinMaxVarsGradientOp(OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadFakeQuantBounds(ctx, &bounds_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradients = ctx->input(0);
    const Tensor& inputs = ctx->input(1);
    const Tensor& min = ctx->input(2);
    const Tensor& max = ctx->input(3);
    OP_REQUIRES_OK(ctx, CheckSameShape(gradients, inputs));
    core::ChannelView view;
    if (kPerChannel) {
      OP_REQUIRES_OK(ctx, PerChannelView(inputs, &view));
      OP_REQUIRES_OK(ctx, CheckChannelRange(min, "min", view.depth));
      OP_REQUIRES_OK(ctx, CheckChannelRange(max, "max", view.depth));
    } else {
      OP_REQUIRES_OK(ctx, CheckScalarRange(min, "min"));
      OP_REQUIRES_OK(ctx, CheckScalarRange(max, "max"));
      view = core::PerTensorView(inputs.NumElements());
    }
    Tensor *wrt_input = nullptr, *wrt_min = nullptr, *wrt_max = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, inputs.shape(), &wrt_input));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, min.shape(), &wrt_min));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, max.shape(), &wrt_max));
    core::FakeQuantGradientArgs<CoreType<T>> args;
    args.gradients = CoreData<T>(gradients);
    args.input = CoreData<T>(inputs);
    args.wrt_input = CoreData<T>(wrt_input);
    args.wrt_min = CoreData<T>(wrt_min);
    args.wrt_max = CoreData<T>(wrt_max);
    args.view = view;
    args.bounds = bounds_;
    args.range = TensorRange<T>(min, max);
    args.zero_range_passes_through = true;
    OP_REQUIRES_OK(ctx, (functor::FakeQuantGradient<Device, CoreType<T>>()(ctx, args)));
  }

 private:
  core::FakeQuantBounds bounds_;
};

#define TF_QDQ_REGISTER_FAKE_QUANT(DEVICE, DEVICE_TYPE, T)                     \
  REGISTER_KERNEL_BUILDER(                                                   \
      Name("TfQdq>FakeQuantWithMinMaxArgs").Device(DEVICE).TypeConstraint<T>("T"), \
      FakeQuantWithMinMaxArgsOp<DEVICE_TYPE, T>);                            \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>FakeQuantWithMinMaxArgsGradient")      \
                              .Device(DEVICE)                                \
                              .TypeConstraint<T>("T"),                       \
                          FakeQuantWithMinMaxArgsGradientOp<DEVICE_TYPE, T>); \
  REGISTER_KERNEL_BUILDER(                                                   \
      Name("TfQdq>FakeQuantWithMinMaxVars").Device(DEVICE).TypeConstraint<T>("T"), \
      FakeQuantWithMinMaxVarsOp<DEVICE_TYPE, T, false>);                     \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>FakeQuantWithMinMaxVarsGradient")      \
                              .Device(DEVICE)                                \
                              .TypeConstraint<T>("T"),                       \
                          FakeQuantWithMinMaxVarsGradientOp<DEVICE_TYPE, T, false>); \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>FakeQuantWithMinMaxVarsPerChannel")    \
                              .Device(DEVICE)                                \
                              .TypeConstraint<T>("T"),                       \
                          FakeQuantWithMinMaxVarsOp<DEVICE_TYPE, T, true>);  \
  REGISTER_KERNEL_BUILDER(                                                   \
      Name("TfQdq>FakeQuantWithMinMaxVarsPerChannelGradient")                \
          .Device(DEVICE)                                                    \
          .TypeConstraint<T>("T"),                                           \
      FakeQuantWithMinMaxVarsGradientOp<DEVICE_TYPE, T, true>);

#define TF_QDQ_REGISTER_FAKE_QUANT_CPU(T) \
  TF_QDQ_REGISTER_FAKE_QUANT(::tensorflow::DEVICE_CPU, CpuTag, T)
TF_QDQ_REGISTER_FAKE_QUANT_CPU(float);
TF_QDQ_REGISTER_FAKE_QUANT_CPU(double);
TF_QDQ_REGISTER_FAKE_QUANT_CPU(Eigen::half);
TF_QDQ_REGISTER_FAKE_QUANT_CPU(Eigen::bfloat16);
#undef TF_QDQ_REGISTER_FAKE_QUANT_CPU

#if GOOGLE_CUDA
#define TF_QDQ_REGISTER_FAKE_QUANT_GPU(T) \
  TF_QDQ_REGISTER_FAKE_QUANT(::tensorflow::DEVICE_GPU, GpuTag, T)
TF_QDQ_REGISTER_FAKE_QUANT_GPU(float);
TF_QDQ_REGISTER_FAKE_QUANT_GPU(double);
TF_QDQ_REGISTER_FAKE_QUANT_GPU(Eigen::half);
TF_QDQ_REGISTER_FAKE_QUANT_GPU(Eigen::bfloat16);
#undef TF_QDQ_REGISTER_FAKE_QUANT_GPU
#endif  // GOOGLE_CUDA

}  // namespace tf_qdq
