// GPU specialisations of the tf-qdq functors: take the op's CUDA stream and a
// workspace from allocate_temp, and run the framework-free kernels of
// cc/core/cuda/*.cuh. Compiled by clang in CUDA mode (see
// build_defs/cuda.bzl) with -ffp-contract=off: no FMA contraction anywhere in
// device code, so every element-wise output matches the CPU kernels' bits.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "cc/core/cuda/fake_quant.cuh"
#include "cc/core/cuda/qdq.cuh"
#include "cc/tf/cpu_functors.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tf_qdq {
namespace functor {
namespace {

cudaStream_t StreamOf(tensorflow::OpKernelContext* ctx) {
  return ctx->eigen_device<Eigen::GpuDevice>().stream();
}

tensorflow::Status Check(cudaError_t error, const char* op) {
  if (error == cudaSuccess) return tensorflow::Status();
  return tensorflow::errors::Internal(op, ": CUDA launch failed: ",
                                      cudaGetErrorString(error));
}

// Runs `launch(workspace, bytes)` with a device workspace of `bytes` bytes.
template <typename Launch>
tensorflow::Status WithWorkspace(tensorflow::OpKernelContext* ctx, size_t bytes,
                                 const char* op, Launch&& launch) {
  tensorflow::Tensor scratch;
  void* data;
  TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, bytes, &scratch, &data));
  return Check(launch(data, bytes), op);
}

}  // namespace

template <typename T>
tensorflow::Status QdqForward<GpuTag, T>::operator()(
    tensorflow::OpKernelContext* ctx, const core::QdqForwardArgs<T>& args) {
  return WithWorkspace(
      ctx, core::cuda::QdqForwardCudaWorkspaceBytes<T>(args.view, args.range_given),
      "QuantizeAndDequantizeV4", [&](void* ws, size_t bytes) {
        return core::cuda::QdqForwardCuda(args, ws, bytes, StreamOf(ctx));
      });
}

template <typename T>
tensorflow::Status QdqGradient<GpuTag, T>::operator()(
    tensorflow::OpKernelContext* ctx, const core::QdqGradientArgs<T>& args) {
  return Check(core::cuda::QdqGradientCuda(args, StreamOf(ctx)),
               "QuantizeAndDequantizeV4Grad");
}

template <core::GridStep kStep, typename T>
tensorflow::Status FakeQuantForward<GpuTag, kStep, T>::operator()(
    tensorflow::OpKernelContext* ctx, const core::FakeQuantArgs<T>& args) {
  return WithWorkspace(
      ctx, core::cuda::FakeQuantForwardCudaWorkspaceBytes<T>(args.view),
      "FakeQuantWithMinMax", [&](void* ws, size_t bytes) {
        return core::cuda::FakeQuantForwardCuda<kStep>(args, ws, bytes, StreamOf(ctx));
      });
}

template <typename T>
tensorflow::Status FakeQuantGradient<GpuTag, T>::operator()(
    tensorflow::OpKernelContext* ctx, const core::FakeQuantGradientArgs<T>& args) {
  return WithWorkspace(
      ctx,
      core::cuda::FakeQuantGradientCudaWorkspaceBytes<T>(args.view, args.wrt_min != nullptr),
      "FakeQuantWithMinMaxGradient", [&](void* ws, size_t bytes) {
        return core::cuda::FakeQuantGradientCuda(args, ws, bytes, StreamOf(ctx));
      });
}

#define TF_QDQ_INSTANTIATE_GPU(T)                                              \
  template struct QdqForward<GpuTag, T>;                                    \
  template struct QdqGradient<GpuTag, T>;                                   \
  template struct FakeQuantForward<GpuTag, core::GridStep::kDivideByScale, T>; \
  template struct FakeQuantForward<GpuTag, core::GridStep::kMultiplyByInverse, T>; \
  template struct FakeQuantGradient<GpuTag, T>;
TF_QDQ_INSTANTIATE_GPU(float)
TF_QDQ_INSTANTIATE_GPU(double)
TF_QDQ_INSTANTIATE_GPU(core::Half)
TF_QDQ_INSTANTIATE_GPU(core::BFloat16)
#undef TF_QDQ_INSTANTIATE_GPU

}  // namespace functor
}  // namespace tf_qdq

#endif  // GOOGLE_CUDA
