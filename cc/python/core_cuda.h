// Host entry points that run the core's CUDA kernels on host arrays for the
// pybind11 module: copy in, launch (cuda_kernels.cuh), copy out. Only built
// with TF_QDQ_WITH_CUDA. Errors throw std::runtime_error.
#ifndef TF_QDQ_CC_PYTHON_CORE_CUDA_H_
#define TF_QDQ_CC_PYTHON_CORE_CUDA_H_

#include "cc/core/op_args.h"

namespace tf_qdq {
namespace cuda_bridge {

template <typename T>
void QdqForward(const core::QdqForwardArgs<T>& host_args);
template <typename T>
void QdqGradient(const core::QdqGradientArgs<T>& host_args);
template <core::GridStep kStep, typename T>
void FakeQuantForward(const core::FakeQuantArgs<T>& host_args);
template <typename T>
void FakeQuantGradient(const core::FakeQuantGradientArgs<T>& host_args);

}  // namespace cuda_bridge
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_PYTHON_CORE_CUDA_H_
