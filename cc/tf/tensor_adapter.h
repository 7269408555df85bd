// The adapter between TensorFlow's kernel API and the framework-free core:
// TF element types -> core storage types, workspace allocation through
// allocate_temp, and TF's CPU thread pool as the core's ParallelFor. (The
// channel view of a TF shape comes from the contracts: contract_adapter.h.)
#ifndef TF_QDQ_CC_TF_TENSOR_ADAPTER_H_
#define TF_QDQ_CC_TF_TENSOR_ADAPTER_H_

#include <cstdint>
#include <functional>

#include "cc/core/convert_block.h"
#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"

namespace tf_qdq {

// Device tags of the OpKernel and functor templates. They are not Eigen's
// devices: a functor takes what it needs (the thread pool, the CUDA stream)
// from the OpKernelContext, and Eigen::GpuDevice is only declared in
// translation units compiled as CUDA.
struct CpuTag {};
struct GpuTag {};

// TF element type -> the core's storage type (same size and bits).
template <typename T>
struct CoreTypeOf {
  using type = T;
};
template <>
struct CoreTypeOf<Eigen::half> {
  using type = core::Half;
};
template <>
struct CoreTypeOf<Eigen::bfloat16> {
  using type = core::BFloat16;
};
template <typename T>
using CoreType = typename CoreTypeOf<T>::type;

static_assert(sizeof(Eigen::half) == sizeof(core::Half), "half layout");
static_assert(sizeof(Eigen::bfloat16) == sizeof(core::BFloat16), "bf16 layout");

template <typename T>
const CoreType<T>* CoreData(const tensorflow::Tensor& t) {
  return reinterpret_cast<const CoreType<T>*>(t.flat<T>().data());
}
template <typename T>
CoreType<T>* CoreData(tensorflow::Tensor* t) {
  return reinterpret_cast<CoreType<T>*>(t->flat<T>().data());
}

// Scalar value of a host tensor in the compute type (for messages and attrs).
template <typename T>
core::ComputeType<CoreType<T>> HostValue(const tensorflow::Tensor& t,
                                        int64_t i = 0) {
  return core::ToCompute(CoreData<T>(t)[i]);
}

// A scratch buffer of `bytes` bytes owned by `holder`.
inline tensorflow::Status AllocateWorkspace(tensorflow::OpKernelContext* ctx,
                                            size_t bytes,
                                            tensorflow::Tensor* holder,
                                            void** data) {
  TF_RETURN_IF_ERROR(ctx->allocate_temp(
      tensorflow::DT_INT8,
      tensorflow::TensorShape({static_cast<int64_t>(bytes > 0 ? bytes : 1)}),
      holder));
  *data = holder->flat<int8_t>().data();
  return tensorflow::Status();
}

// TF's intra-op thread pool as the core's ParallelFor.
class CpuParallelFor {
 public:
  explicit CpuParallelFor(tensorflow::OpKernelContext* ctx)
      : pool_(ctx->device()->tensorflow_cpu_worker_threads()->workers) {}

  template <typename Fn>
  void operator()(int64_t units, int64_t cost_per_unit, Fn&& fn) const {
    if (units <= 0) return;
    // Below ~500k cycles (~128K elements) waking a second thread costs more
    // than it saves on these memory-bound loops, and the pool's std::function
    // and cost model show on 1K-element calls: run inline. The caller's thread
    // already has denormals flushed (the core's entry points set it).
    if (units * cost_per_unit < kInlineCycles) {
      fn(int64_t{0}, units);
      return;
    }
    pool_->ParallelFor(units, cost_per_unit, [&fn](int64_t begin, int64_t end) {
      core::ScopedFlushDenormals flush;  // TF's CPU kernels flush denormals
      fn(begin, end);
    });
  }

 private:
  static constexpr int64_t kInlineCycles = int64_t{1} << 19;
  tensorflow::thread::ThreadPool* pool_;
};

}  // namespace tf_qdq

#endif  // TF_QDQ_CC_TF_TENSOR_ADAPTER_H_
