// Device-templated entry points of the tf-qdq kernels, in the style of
// tensorflow/custom-op: the OpKernels (quantize_and_dequantize_kernels.cc,
// fake_quant_kernels.cc) validate and allocate, then call one of these functors.
// The CPU specialisations below run the core's CPU loops on TF's thread pool;
// the GPU ones live in gpu_functors.cu.cc.
//
// T is the core storage type (core::Half for Eigen::half, ...). All pointers
// in the args structs point into the device's memory.
#ifndef TF_QDQ_CC_KERNELS_QUANTIZE_FUNCTORS_H_
#define TF_QDQ_CC_KERNELS_QUANTIZE_FUNCTORS_H_

#include "cc/core/cpu_kernels.h"
#include "cc/kernels/kernel_support.h"

namespace tf_qdq {
namespace functor {

template <typename Device, typename T>
struct QdqForward {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqForwardArgs<T>& args);
};

template <typename Device, typename T>
struct QdqGradient {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqGradientArgs<T>& args);
};

template <typename Device, core::GridStep kStep, typename T>
struct FakeQuantForward {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantArgs<T>& args);
};

template <typename Device, typename T>
struct FakeQuantGradient {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantGradientArgs<T>& args);
};

// ---- CPU ------------------------------------------------------------------

// Runs `fn(core::Workspace&)` with `bytes` of scratch: on the stack when small
// (the per-tensor case needs a few dozen bytes, and an allocation would be a
// measurable part of a 1K-element call), else from allocate_temp.
template <typename Fn>
tensorflow::Status WithCpuWorkspace(tensorflow::OpKernelContext* ctx, size_t bytes,
                                    Fn&& fn) {
  constexpr size_t kStackBytes = 4096;
  alignas(64) unsigned char stack[kStackBytes];
  tensorflow::Tensor scratch;
  void* data = stack;
  if (bytes > kStackBytes) {
    TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, bytes, &scratch, &data));
  }
  core::Workspace ws(data, bytes);
  fn(ws);
  return tensorflow::Status();
}

template <typename T>
struct QdqForward<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqForwardArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::QdqForwardWorkspaceBytes<T>(args.view, args.range_given),
        [&](core::Workspace& ws) { core::QdqForwardCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

template <typename T>
struct QdqGradient<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqGradientArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::QdqGradientWorkspaceBytes<T>(args.view),
        [&](core::Workspace& ws) { core::QdqGradientCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

template <core::GridStep kStep, typename T>
struct FakeQuantForward<CPUDevice, kStep, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::FakeQuantWorkspaceBytes<T>(args.view), [&](core::Workspace& ws) {
          core::FakeQuantForwardCpu<kStep>(args, ws, CpuParallelFor(ctx));
        });
  }
};

template <typename T>
struct FakeQuantGradient<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantGradientArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::FakeQuantGradientWorkspaceBytes<T>(args.view, args.wrt_min != nullptr),
        [&](core::Workspace& ws) { core::FakeQuantGradientCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

#if GOOGLE_CUDA
// ---- GPU: defined in gpu_functors.cu.cc ---------------------------------------

template <typename T>
struct QdqForward<GPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqForwardArgs<T>& args);
};

template <typename T>
struct QdqGradient<GPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqGradientArgs<T>& args);
};

template <core::GridStep kStep, typename T>
struct FakeQuantForward<GPUDevice, kStep, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantArgs<T>& args);
};

template <typename T>
struct FakeQuantGradient<GPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantGradientArgs<T>& args);
};
#endif  // GOOGLE_CUDA

}  // namespace functor
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_KERNELS_QUANTIZE_FUNCTORS_H_
