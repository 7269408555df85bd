// OpKernels for the TfQdq>FakeQuantWithMinMax{Args,Vars,VarsPerChannel} ops
// and their gradients: read the attrs, enforce the op's contract
// (cc/core/contract/fake_quant.h), allocate, and dispatch to the device
// functor. min/max tensors are read by the functor on the op's device: these
// kernels look only at their shapes.
#include <string>

#include "cc/core/contract/fake_quant.h"
#include "cc/tf/contract_adapter.h"
#include "cc/tf/cpu_functors.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tf_qdq {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

// The attrs every FakeQuant op reads and checks when it is built (Args: min
// and max too, before num_bits, in TF's order).
template <core::FakeQuantOp kOp>
class FakeQuantOpBase : public OpKernel {
 public:
  explicit FakeQuantOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    if (kOp == core::FakeQuantOp::kArgs) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("min", &min_));
      OP_REQUIRES_OK(ctx, ctx->GetAttr("max", &max_));
    }
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_bits", &num_bits_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("narrow_range", &narrow_range_));
    core::Checker check;
    core::CheckFakeQuantAttrs(check, kOp, min_, max_, num_bits_);
    OP_REQUIRES_OK(ctx, ToStatus(check));
  }

 protected:
  float min_ = 0.0f;  // Args only
  float max_ = 0.0f;
  int num_bits_;
  bool narrow_range_;
};

// ---- Args: min/max are float attrs ------------------------------------------

template <typename Device, typename T>
class FakeQuantWithMinMaxArgsOp : public FakeQuantOpBase<core::FakeQuantOp::kArgs> {
 public:
  using FakeQuantOpBase::FakeQuantOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& inputs = ctx->input(0);
    Tensor* outputs = nullptr;
    // Like TF's UnaryElementWiseOp, reuse the input buffer when possible.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            {0}, 0, inputs.shape(), &outputs));
    const auto args = core::MakeFakeQuantArgs<CoreType<T>>(
        core::FakeQuantOp::kArgs, num_bits_, narrow_range_,
        core::PerTensorView(inputs.NumElements()),
        core::AttrRange<CoreType<T>>(min_, max_), CoreData<T>(inputs),
        CoreData<T>(outputs));
    OP_REQUIRES_OK(ctx, (functor::FakeQuantForward<Device, core::GridStepOf(core::FakeQuantOp::kArgs),
                                                   CoreType<T>>()(ctx, args)));
  }
};

template <typename Device, typename T>
class FakeQuantWithMinMaxArgsGradientOp : public FakeQuantOpBase<core::FakeQuantOp::kArgs> {
 public:
  using FakeQuantOpBase::FakeQuantOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradients = ctx->input(0);
    const Tensor& inputs = ctx->input(1);
    const TfShape gradients_shape(0, gradients.shape()), inputs_shape(1, inputs.shape());
    core::Checker check;
    core::CheckFakeQuantGradientInputs(check, core::FakeQuantOp::kArgs, gradients_shape, inputs_shape,
                                       inputs_shape, inputs_shape, name(),
                                       type_string());
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor* backprops = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            {0, 1}, 0, inputs.shape(), &backprops));
    const auto args = core::MakeFakeQuantGradientArgs<CoreType<T>>(
        core::FakeQuantOp::kArgs, num_bits_, narrow_range_,
        core::PerTensorView(inputs.NumElements()),
        core::AttrRange<CoreType<T>>(min_, max_), CoreData<T>(gradients),
        CoreData<T>(inputs), CoreData<T>(backprops), nullptr, nullptr);
    OP_REQUIRES_OK(ctx, (functor::FakeQuantGradient<Device, CoreType<T>>()(ctx, args)));
  }
};

// ---- Vars and VarsPerChannel: min/max are tensors ----------------------------

template <typename Device, typename T, core::FakeQuantOp kOp>
class FakeQuantWithMinMaxVarsOp : public FakeQuantOpBase<kOp> {
 public:
  using FakeQuantOpBase<kOp>::FakeQuantOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& inputs = ctx->input(0);
    const Tensor& min = ctx->input(1);
    const Tensor& max = ctx->input(2);
    const TfShape inputs_shape(0, inputs.shape()), min_shape(1, min.shape()),
        max_shape(2, max.shape());
    core::Checker check;
    core::CheckFakeQuantForwardInputs(check, kOp, inputs_shape, min_shape, max_shape);
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor* outputs = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, inputs.shape(), &outputs));
    const auto args = core::MakeFakeQuantArgs<CoreType<T>>(
        kOp, this->num_bits_, this->narrow_range_, core::FakeQuantView(kOp, inputs_shape),
        core::TensorRange<CoreType<T>>(CoreData<T>(min), CoreData<T>(max)),
        CoreData<T>(inputs), CoreData<T>(outputs));
    OP_REQUIRES_OK(ctx, (functor::FakeQuantForward<Device, core::GridStepOf(kOp),
                                                   CoreType<T>>()(ctx, args)));
  }

};

template <typename Device, typename T, core::FakeQuantOp kOp>
class FakeQuantWithMinMaxVarsGradientOp : public FakeQuantOpBase<kOp> {
 public:
  using FakeQuantOpBase<kOp>::FakeQuantOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradients = ctx->input(0);
    const Tensor& inputs = ctx->input(1);
    const Tensor& min = ctx->input(2);
    const Tensor& max = ctx->input(3);
    const TfShape gradients_shape(0, gradients.shape()), inputs_shape(1, inputs.shape()),
        min_shape(2, min.shape()), max_shape(3, max.shape());
    core::Checker check;
    core::CheckFakeQuantGradientInputs(check, kOp, gradients_shape, inputs_shape, min_shape,
                                       max_shape, this->name(), this->type_string());
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor *wrt_input = nullptr, *wrt_min = nullptr, *wrt_max = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, inputs.shape(), &wrt_input));
    // In a graph, the range backprops of a per-tensor quantizer often have no
    // consumer (its range is a non-trainable moving average): then the
    // executor does not require them, and their sums (the op's second pass
    // over the data) are skipped. backprops_wrt_input has the same bits.
    const bool range_sums = kOp != core::FakeQuantOp::kVars || ctx->output_required(1) ||
                            ctx->output_required(2);
    if (range_sums) {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, min.shape(), &wrt_min));
      OP_REQUIRES_OK(ctx, ctx->allocate_output(2, max.shape(), &wrt_max));
    }
    const auto args = core::MakeFakeQuantGradientArgs<CoreType<T>>(
        kOp, this->num_bits_, this->narrow_range_, core::FakeQuantView(kOp, inputs_shape),
        core::TensorRange<CoreType<T>>(CoreData<T>(min), CoreData<T>(max)),
        CoreData<T>(gradients), CoreData<T>(inputs), CoreData<T>(wrt_input),
        range_sums ? CoreData<T>(wrt_min) : nullptr,
        range_sums ? CoreData<T>(wrt_max) : nullptr);
    OP_REQUIRES_OK(ctx, (functor::FakeQuantGradient<Device, CoreType<T>>()(ctx, args)));
  }

};

// ---- FakeQuantWithMovingAverage: tf_qdq's own op (ops.cc), CPU only -------

// The attrs the op and its gradient share: the FakeQuant ones and the
// activation.
class MovingAverageOpBase : public FakeQuantOpBase<core::FakeQuantOp::kVars> {
 public:
  explicit MovingAverageOpBase(OpKernelConstruction* ctx) : FakeQuantOpBase(ctx) {
    std::string activation;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("activation", &activation));
    activation_ = core::ActivationNamed(activation);
  }

 protected:
  core::Activation activation_;
};

template <typename T>
class FakeQuantWithMovingAverageOp : public MovingAverageOpBase {
 public:
  explicit FakeQuantWithMovingAverageOp(OpKernelConstruction* ctx) : MovingAverageOpBase(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("momentum", &momentum_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("non_negative", &non_negative_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("symmetric", &symmetric_));
    core::Checker check;
    core::CheckMovingAverageAttrs(check, num_bits_, momentum_);
    OP_REQUIRES_OK(ctx, ToStatus(check));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& inputs = ctx->input(0);
    const Tensor& min = ctx->input(1);
    const Tensor& max = ctx->input(2);
    const Tensor& initialized = ctx->input(3);
    core::Checker check;
    core::CheckMovingAverageInputs(check, TfShape(1, min.shape()), TfShape(2, max.shape()),
                                   TfShape(3, initialized.shape()));
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor* outputs = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, inputs.shape(), &outputs));
    Tensor* state[3];
    for (int i = 0; i < 3; ++i) {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1 + i, {}, &state[i]));
    }
    Tensor *grid_min = nullptr, *grid_max = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, {}, &grid_min));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, {}, &grid_max));
    const core::MovingAverageRange old{min.scalar<float>()(), max.scalar<float>()(),
                                       initialized.scalar<float>()()};
    core::MovingAverageRange updated;
    const auto args = core::MakeMovingAverageFakeQuantArgs<CoreType<T>>(
        num_bits_, narrow_range_, activation_, momentum_, non_negative_, symmetric_,
        inputs.NumElements(), old,
        CoreData<T>(inputs), CoreData<T>(outputs), &updated, CoreData<T>(grid_min),
        CoreData<T>(grid_max));
    OP_REQUIRES_OK(ctx, (functor::MovingAverageFakeQuant<CpuTag, CoreType<T>>()(ctx, args)));
    state[0]->scalar<float>()() = updated.min;
    state[1]->scalar<float>()() = updated.max;
    state[2]->scalar<float>()() = updated.initialized;
  }

 private:
  float momentum_;
  bool non_negative_;
  bool symmetric_;
};

template <typename T>
class FakeQuantWithMovingAverageGradientOp : public MovingAverageOpBase {
 public:
  using MovingAverageOpBase::MovingAverageOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradients = ctx->input(0);
    const Tensor& inputs = ctx->input(1);
    const Tensor& grid_min = ctx->input(2);
    const Tensor& grid_max = ctx->input(3);
    core::Checker check;
    core::CheckFakeQuantGradientInputs(check, core::FakeQuantOp::kVars, TfShape(0, gradients.shape()),
                                       TfShape(1, inputs.shape()), TfShape(2, grid_min.shape()),
                                       TfShape(3, grid_max.shape()), name(), type_string());
    OP_REQUIRES_OK(ctx, ToStatus(check));
    Tensor* backprops = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, inputs.shape(), &backprops));
    const auto args = core::MakeMovingAverageGradientArgs<CoreType<T>>(
        num_bits_, narrow_range_, activation_, inputs.NumElements(), CoreData<T>(grid_min),
        CoreData<T>(grid_max), CoreData<T>(gradients), CoreData<T>(inputs),
        CoreData<T>(backprops));
    OP_REQUIRES_OK(ctx, (functor::FakeQuantGradient<CpuTag, CoreType<T>>()(ctx, args)));
  }
};

// REGISTRAR(DEVICE, T, NAME, KERNEL) for each FakeQuant op: the one list of
// ops and their kernel classes.
#define TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL(REGISTRAR, DEVICE, DEVICE_TYPE, T)  \
  REGISTRAR(DEVICE, T, "FakeQuantWithMinMaxArgs",                            \
            FakeQuantWithMinMaxArgsOp<DEVICE_TYPE, T>);                      \
  REGISTRAR(DEVICE, T, "FakeQuantWithMinMaxArgsGradient",                    \
            FakeQuantWithMinMaxArgsGradientOp<DEVICE_TYPE, T>);              \
  REGISTRAR(DEVICE, T, "FakeQuantWithMinMaxVars",                            \
            FakeQuantWithMinMaxVarsOp<DEVICE_TYPE, T, core::FakeQuantOp::kVars>); \
  REGISTRAR(DEVICE, T, "FakeQuantWithMinMaxVarsGradient",                    \
            FakeQuantWithMinMaxVarsGradientOp<DEVICE_TYPE, T, core::FakeQuantOp::kVars>); \
  REGISTRAR(DEVICE, T, "FakeQuantWithMinMaxVarsPerChannel",                  \
            FakeQuantWithMinMaxVarsOp<DEVICE_TYPE, T, core::FakeQuantOp::kVarsPerChannel>); \
  REGISTRAR(DEVICE, T, "FakeQuantWithMinMaxVarsPerChannelGradient",          \
            FakeQuantWithMinMaxVarsGradientOp<DEVICE_TYPE, T, core::FakeQuantOp::kVarsPerChannel>)

// The public op, for each T.
#define TF_QDQ_REGISTER_TYPED_KERNEL(DEVICE, T, NAME, ...)                   \
  REGISTER_KERNEL_BUILDER(                                                   \
      Name("TfQdq>" NAME).Device(DEVICE).TypeConstraint<T>("T"), __VA_ARGS__)
// Its float-only twin, the eager fast path's op (ops.cc): no T to constrain.
#define TF_QDQ_REGISTER_FLOAT_ONLY_KERNEL(DEVICE, T, NAME, ...)              \
  REGISTER_KERNEL_BUILDER(Name("TfQdq>" NAME "Float").Device(DEVICE), __VA_ARGS__)

#define TF_QDQ_REGISTER_FAKE_QUANT(DEVICE, DEVICE_TYPE)                      \
  TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL(TF_QDQ_REGISTER_TYPED_KERNEL, DEVICE,    \
                                    DEVICE_TYPE, float);                     \
  TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL(TF_QDQ_REGISTER_TYPED_KERNEL, DEVICE,    \
                                    DEVICE_TYPE, double);                    \
  TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL(TF_QDQ_REGISTER_TYPED_KERNEL, DEVICE,    \
                                    DEVICE_TYPE, Eigen::half);               \
  TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL(TF_QDQ_REGISTER_TYPED_KERNEL, DEVICE,    \
                                    DEVICE_TYPE, Eigen::bfloat16);           \
  TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL(TF_QDQ_REGISTER_FLOAT_ONLY_KERNEL, DEVICE, \
                                    DEVICE_TYPE, float)

TF_QDQ_REGISTER_FAKE_QUANT(::tensorflow::DEVICE_CPU, CpuTag);
#if GOOGLE_CUDA
TF_QDQ_REGISTER_FAKE_QUANT(::tensorflow::DEVICE_GPU, GpuTag);
#endif  // GOOGLE_CUDA

// FakeQuantWithMovingAverage and its gradient: CPU only, no float-only twin
// (tf_qdq.keras builds them in graphs only).
#define TF_QDQ_REGISTER_MOVING_AVERAGE_CPU(T)                                  \
  TF_QDQ_REGISTER_TYPED_KERNEL(::tensorflow::DEVICE_CPU, T,                    \
                               "FakeQuantWithMovingAverage",                   \
                               FakeQuantWithMovingAverageOp<T>);               \
  TF_QDQ_REGISTER_TYPED_KERNEL(::tensorflow::DEVICE_CPU, T,                    \
                               "FakeQuantWithMovingAverageGradient",           \
                               FakeQuantWithMovingAverageGradientOp<T>)
TF_QDQ_REGISTER_MOVING_AVERAGE_CPU(float);
TF_QDQ_REGISTER_MOVING_AVERAGE_CPU(double);
TF_QDQ_REGISTER_MOVING_AVERAGE_CPU(Eigen::half);
TF_QDQ_REGISTER_MOVING_AVERAGE_CPU(Eigen::bfloat16);
#undef TF_QDQ_REGISTER_MOVING_AVERAGE_CPU


#undef TF_QDQ_REGISTER_FAKE_QUANT
#undef TF_QDQ_REGISTER_FLOAT_ONLY_KERNEL
#undef TF_QDQ_REGISTER_TYPED_KERNEL
#undef TF_QDQ_FOR_EACH_FAKE_QUANT_KERNEL

}  // namespace tf_qdq
