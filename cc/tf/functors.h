// Device-templated entry points of the tf-qdq OpKernels, in the style of
// tensorflow/custom-op: the OpKernels (qdq_kernels.cc, fake_quant_kernels.cc)
// validate and allocate, then call one of these functors. The CPU
// specialisations (cpu_functors.h) run the core's CPU loops on TF's thread
// pool; the GPU ones (gpu_functors.cu.cc) launch the core's CUDA kernels.
// This header includes neither, so the CUDA translation unit does not parse
// the CPU loops.
//
// T is the core storage type (core::Half for Eigen::half, ...). All pointers
// in the args structs point into the device's memory.
#ifndef TF_QDQ_CC_TF_FUNCTORS_H_
#define TF_QDQ_CC_TF_FUNCTORS_H_

#include "cc/core/op_args.h"
#include "cc/tf/tensor_adapter.h"

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

// CPU only (cpu_functors.h).
template <typename Device, typename T>
struct MovingAverageFakeQuant {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::MovingAverageFakeQuantArgs<T>& args);
};

#if GOOGLE_CUDA
// ---- GPU: defined in gpu_functors.cu.cc ---------------------------------------

template <typename T>
struct QdqForward<GpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqForwardArgs<T>& args);
};

template <typename T>
struct QdqGradient<GpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqGradientArgs<T>& args);
};

template <core::GridStep kStep, typename T>
struct FakeQuantForward<GpuTag, kStep, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantArgs<T>& args);
};

template <typename T>
struct FakeQuantGradient<GpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantGradientArgs<T>& args);
};
#endif  // GOOGLE_CUDA

}  // namespace functor
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_TF_FUNCTORS_H_
