// CPU specialisations of the functors (functors.h): the core's CPU loops on
// TF's intra-op thread pool, with scratch from the stack or allocate_temp.
#ifndef TF_QDQ_CC_TF_CPU_FUNCTORS_H_
#define TF_QDQ_CC_TF_CPU_FUNCTORS_H_

#include "cc/core/cpu/fake_quant.h"
#include "cc/core/cpu/fake_quant_gradient.h"
#include "cc/core/cpu/moving_average.h"
#include "cc/core/cpu/qdq.h"
#include "cc/tf/functors.h"
#include "cc/tf/tensor_adapter.h"

namespace tf_qdq {
namespace functor {

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
struct QdqForward<CpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqForwardArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::QdqForwardWorkspaceBytes<T>(args.view, args.range_given),
        [&](core::Workspace& ws) { core::QdqForwardCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

template <typename T>
struct QdqGradient<CpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::QdqGradientArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::QdqGradientWorkspaceBytes<T>(args.view),
        [&](core::Workspace& ws) { core::QdqGradientCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

template <core::GridStep kStep, typename T>
struct FakeQuantForward<CpuTag, kStep, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::FakeQuantWorkspaceBytes<T>(args.view), [&](core::Workspace& ws) {
          core::FakeQuantForwardCpu<kStep>(args, ws, CpuParallelFor(ctx));
        });
  }
};

template <typename T>
struct FakeQuantGradient<CpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::FakeQuantGradientArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::FakeQuantGradientWorkspaceBytes<T>(args.view, args.wrt_min != nullptr),
        [&](core::Workspace& ws) { core::FakeQuantGradientCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

template <typename T>
struct MovingAverageFakeQuant<CpuTag, T> {
  tensorflow::Status operator()(tensorflow::OpKernelContext* ctx,
                                const core::MovingAverageFakeQuantArgs<T>& args) {
    return WithCpuWorkspace(
        ctx, core::MovingAverageFakeQuantWorkspaceBytes<T>(args.quantize.view.size()),
        [&](core::Workspace& ws) { core::MovingAverageFakeQuantCpu(args, ws, CpuParallelFor(ctx)); });
  }
};

}  // namespace functor
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_TF_CPU_FUNCTORS_H_
