// Host entry points that run the core's CUDA kernels on host arrays for the
// pybind11 module: copy in, launch (cc/core/cuda/*.cuh), copy out. Only built
// with TF_QDQ_WITH_CUDA. Errors throw std::runtime_error.
#ifndef TF_QDQ_CC_PYTHON_CORE_CUDA_H_
#define TF_QDQ_CC_PYTHON_CORE_CUDA_H_

#include <cstdint>
#include <string>

#include "cc/core/op_args.h"

namespace tf_qdq {
namespace cuda_bridge {

template <typename T>
void LaunchQdqForward(const core::QdqForwardArgs<T>& host_args);
template <typename T>
void LaunchQdqGradient(const core::QdqGradientArgs<T>& host_args);
template <core::GridStep kStep, typename T>
void LaunchFakeQuantForward(const core::FakeQuantArgs<T>& host_args);
template <typename T>
void LaunchFakeQuantGradient(const core::FakeQuantGradientArgs<T>& host_args);

// Times `op` on device-resident float32 data of `n` values (`channels` > 1:
// per channel, channel = last axis) over `reps` runs with CUDA events, and a
// device-to-device copy of the same bytes in the same run. Returns
// {op_ms, copy_ms, bytes_moved_by_op} (medians); used by bench/gpu_bandwidth.py.
struct BenchmarkResult {
  double op_ms;
  double copy_ms;
  double op_bytes;
};
BenchmarkResult Benchmark(const std::string& op, int64_t n, int64_t channels, int reps);

}  // namespace cuda_bridge
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_PYTHON_CORE_CUDA_H_
