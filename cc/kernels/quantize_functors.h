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

template <typename T>
struct QdqForward<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqForwardArgs<T>& args) {
    tensorflow::Tensor scratch;
    void* data;
    const size_t bytes =
        core::QdqForwardWorkspaceBytes<T>(args.view, args.range_given);
    TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, bytes, &scratch, &data));
    core::Workspace ws(data, bytes);
    core::QdqForwardCpu(args, ws, CpuParallelFor(ctx));
    return tensorflow::Status();
  }
};

template <typename T>
struct QdqGradient<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqGradientArgs<T>& args) {
    tensorflow::Tensor scratch;
    void* data;
    const size_t bytes = core::QdqGradientWorkspaceBytes<T>(args.view);
    TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, bytes, &scratch, &data));
    core::Workspace ws(data, bytes);
    core::QdqGradientCpu(args, ws, CpuParallelFor(ctx));
    return tensorflow::Status();
  }
};

template <core::GridStep kStep, typename T>
struct FakeQuantForward<CPUDevice, kStep, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantArgs<T>& args) {
    tensorflow::Tensor scratch;
    void* data;
    const size_t bytes = core::FakeQuantWorkspaceBytes<T>(args.view);
    TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, bytes, &scratch, &data));
    core::Workspace ws(data, bytes);
    core::FakeQuantForwardCpu<kStep>(args, ws, CpuParallelFor(ctx));
    return tensorflow::Status();
  }
};

template <typename T>
struct FakeQuantGradient<CPUDevice, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantGradientArgs<T>& args) {
    tensorflow::Tensor scratch;
    void* data;
    const size_t bytes = core::FakeQuantGradientWorkspaceBytes<T>(
        args.view, args.wrt_min != nullptr);
    TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, bytes, &scratch, &data));
    core::Workspace ws(data, bytes);
    core::FakeQuantGradientCpu(args, ws, CpuParallelFor(ctx));
    return tensorflow::Status();
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
