// The CUDA kernels of QuantizeAndDequantizeV4 (V2 and V3 share it) and its
// gradient (the shared contract: cuda/launch.cuh).
#ifndef TF_QDQ_CC_CORE_CUDA_QDQ_CUH_
#define TF_QDQ_CC_CORE_CUDA_QDQ_CUH_

#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>

#include "cc/core/cuda/launch.cuh"
#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {
namespace cuda {

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV4
// ---------------------------------------------------------------------------

// How many blocks reduce each channel (1: the reduction writes final scales).
inline int64_t QdqReductionParts(const ChannelView& v) {
  if (v.depth > kSharedChannels) return 1;
  int64_t parts = kReductionBlocks / v.depth;
  const int64_t per_channel = v.outer * v.inner;
  const int64_t useful = CeilDiv(per_channel, kThreads * 8);
  if (parts > useful) parts = useful;
  return parts < 1 ? 1 : parts;
}

template <typename C, typename WS>
inline void TakeQdqCudaScratch(const ChannelView& v, bool range_given, WS& ws,
                               QdqScale<C>** scales, C** part_min, C** part_max) {
  *scales = nullptr;
  *part_min = *part_max = nullptr;
  if (v.depth > kSharedChannels) *scales = ws.template Take<QdqScale<C>>(v.depth);
  if (!range_given && v.depth <= kSharedChannels) {
    const int64_t parts = QdqReductionParts(v) * v.depth;
    *part_min = ws.template Take<C>(parts);
    *part_max = ws.template Take<C>(parts);
  }
}

template <typename T>
size_t QdqForwardCudaWorkspaceBytes(const ChannelView& v, bool range_given) {
  if (v.size() == 0) return 0;  // the kernel returns at once
  WorkspaceMeter meter;
  QdqScale<ComputeType<T>>* s;
  ComputeType<T>*a, *b;
  TakeQdqCudaScratch(v, range_given, meter, &s, &a, &b);
  return meter.used();
}

// The scale of a channel from its range. On the GPU an invalid given per-tensor
// range (min > max or NaN) cannot raise without a host sync: it gives NaN.
template <typename C>
__device__ __forceinline__ QdqScale<C> ScaleOrNan(QdqBounds bounds, C mn, C mx,
                                                  bool check_order) {
  QdqScale<C> s = ComputeQdqScale(bounds, mn, mx);
  if (check_order && !(mn <= mx)) {
    const C nan = Infinity<C>() - Infinity<C>();
    s.scale = s.inverse_scale = nan;
  }
  return s;
}

template <typename C>
__device__ __forceinline__ void BlockMinMax(C* mn, C* mx) {
  __shared__ C smin[kThreads], smax[kThreads];
  __syncthreads();  // the previous call's readers are done
  smin[threadIdx.x] = *mn;
  smax[threadIdx.x] = *mx;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      smin[threadIdx.x] = RunningMin(smin[threadIdx.x], smin[threadIdx.x + s]);
      smax[threadIdx.x] = RunningMax(smax[threadIdx.x], smax[threadIdx.x + s]);
    }
    __syncthreads();
  }
  *mn = smin[0];
  *mx = smax[0];
}

// Launch 1 of a data-derived range: block (p, c) reduces part p of channel c.
// With one part per channel it also computes the channel's final scale.
template <typename T, typename Index>
__global__ void QdqChannelMinMaxKernel(const T* x, Index outer, Index depth,
                                       Index inner, Index parts, QdqBounds bounds,
                                       ComputeType<T>* part_min,
                                       ComputeType<T>* part_max,
                                       QdqScale<ComputeType<T>>* scales) {
  using C = ComputeType<T>;
  const Index p = blockIdx.x;
  const Index per_channel = outer * inner;
  for (Index c = blockIdx.y; c < depth; c += gridDim.y) {  // grid.y <= 65535
    C mn = Infinity<C>(), mx = -Infinity<C>();
    for (Index j = p * kThreads + threadIdx.x; j < per_channel; j += parts * kThreads) {
      const Index o = j / inner;
      const Index k = j - o * inner;
      const C v = ToCompute(x[(o * depth + c) * inner + k]);
      mn = RunningMin(mn, v);
      mx = RunningMax(mx, v);
    }
    BlockMinMax(&mn, &mx);
    if (threadIdx.x == 0) {
      if (scales != nullptr) {
        scales[c] = ComputeQdqScale(bounds, mn, mx);
      } else {
        part_min[p * depth + c] = mn;
        part_max[p * depth + c] = mx;
      }
    }
  }
}

// Launch 1 of a given range with many channels: the scales, once.
template <typename T>
__global__ void QdqScalesFromRangeKernel(const T* given_min, const T* given_max,
                                         int64_t depth, QdqBounds bounds,
                                         QdqScale<ComputeType<T>>* scales) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (c < depth) {
    scales[c] = ComputeQdqScale(bounds, ToCompute(given_min[c]), ToCompute(given_max[c]));
  }
}

// The element-wise pass. Scales come from global memory (many channels) or are
// computed by the block into shared memory from the given range or from the
// reduction's parts.
template <typename T, RoundMode kMode, bool kClamp, typename Index>
__global__ void QdqApplyKernel(const T* in, T* out, Index n, Index depth,
                               Index inner, QdqBounds bounds,
                               const QdqScale<ComputeType<T>>* global_scales,
                               const T* given_min, const T* given_max,
                               const ComputeType<T>* part_min,
                               const ComputeType<T>* part_max, Index parts,
                               bool check_range_order) {
  using C = ComputeType<T>;
  extern __shared__ unsigned char shared_bytes[];
  const QdqScale<C>* scales = global_scales;
  if (global_scales == nullptr) {
    QdqScale<C>* shared_scales = reinterpret_cast<QdqScale<C>*>(shared_bytes);
    for (Index c = threadIdx.x; c < depth; c += kThreads) {
      C mn, mx;
      if (given_min != nullptr) {
        mn = ToCompute(given_min[c]);
        mx = ToCompute(given_max[c]);
      } else {
        mn = Infinity<C>();
        mx = -Infinity<C>();
        for (Index p = 0; p < parts; ++p) {
          mn = RunningMin(mn, part_min[p * depth + c]);
          mx = RunningMax(mx, part_max[p * depth + c]);
        }
      }
      shared_scales[c] = ScaleOrNan(bounds, mn, mx, check_range_order);
    }
    __syncthreads();
    scales = shared_scales;
  }
  for (Index i = blockIdx.x * static_cast<Index>(kThreads) + threadIdx.x; i < n;
       i += static_cast<Index>(gridDim.x) * kThreads) {
    out[i] = StoreAs<T>(QuantizeDequantize<kMode, kClamp>(
        ToCompute(in[i]), scales[ChannelOf(i, depth, inner)]));
  }
}

template <typename T>
cudaError_t QdqForwardCuda(const QdqForwardArgs<T>& args, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream) {
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  if (v.size() == 0) return cudaSuccess;
  Workspace ws(workspace, workspace_bytes);
  QdqScale<C>* scales;
  C *part_min, *part_max;
  TakeQdqCudaScratch(v, args.range_given, ws, &scales, &part_min, &part_max);
  if (ws.used() > workspace_bytes) return cudaErrorInvalidValue;
  const int64_t parts = QdqReductionParts(v);
  return DispatchIndex(v.size(), [&](auto index_tag) -> cudaError_t {
    using Index = decltype(index_tag);
    // Launch 1: the range or the scales, when the element pass cannot.
    if (!args.range_given) {
      QdqChannelMinMaxKernel<T, Index>
          <<<dim3(static_cast<unsigned>(parts),
                  static_cast<unsigned>(v.depth < 65535 ? v.depth : 65535)),
             kThreads, 0, stream>>>(args.input, v.outer, v.depth, v.inner, parts,
                                    args.bounds, part_min, part_max, scales);
    } else if (scales != nullptr) {
      QdqScalesFromRangeKernel<T><<<GridFor(v.depth), kThreads, 0, stream>>>(
          args.input_min, args.input_max, v.depth, args.bounds, scales);
    }
    // Launch 2: the element-wise pass.
    const size_t shared = scales == nullptr ? v.depth * sizeof(QdqScale<C>) : 0;
    const T* given_min = (args.range_given && scales == nullptr) ? args.input_min : nullptr;
    const T* given_max = (args.range_given && scales == nullptr) ? args.input_max : nullptr;
    const unsigned grid = GridFor(v.size(), kThreads * 4);
    DispatchQdqVariant(args.round_mode, args.range_given, [&](auto mode, auto clamp) {
      QdqApplyKernel<T, decltype(mode)::value, decltype(clamp)::value, Index>
          <<<grid, kThreads, shared, stream>>>(
              args.input, args.output, v.size(), v.depth, v.inner, args.bounds,
              scales, given_min, given_max, part_min, part_max, parts,
              args.check_range_order);
    });
    return cudaGetLastError();
  });
}

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV4Grad: one launch, no reduction.
// ---------------------------------------------------------------------------

template <typename T, typename Index>
__global__ void QdqGradientKernel(QdqGradientArgs<T> args, Index n, Index depth,
                                  Index inner) {
  using C = ComputeType<T>;
  const Index first = blockIdx.x * static_cast<Index>(kThreads) + threadIdx.x;
  const Index stride = static_cast<Index>(gridDim.x) * kThreads;
  for (Index c = first; c < args.range_size; c += stride) {
    args.input_min_backprop[c] = args.input_max_backprop[c] = StoreAs<T>(C(0));
  }
  for (Index i = first; i < n; i += stride) {
    const Index c = ChannelOf(i, depth, inner);
    args.input_backprop[i] = StoreAs<T>(QdqGradient(
        ToCompute(args.gradients[i]), ToCompute(args.input[i]),
        ToCompute(args.input_min[c]), ToCompute(args.input_max[c])));
  }
}

template <typename T>
cudaError_t QdqGradientCuda(const QdqGradientArgs<T>& args, cudaStream_t stream) {
  const ChannelView& v = args.view;
  const int64_t work = v.size() > args.range_size ? v.size() : args.range_size;
  if (work == 0) return cudaSuccess;
  return DispatchIndex(work, [&](auto index_tag) -> cudaError_t {
    using Index = decltype(index_tag);
    QdqGradientKernel<T, Index><<<GridFor(work, kThreads * 4), kThreads, 0, stream>>>(
        args, v.size(), v.depth, v.inner);
    return cudaGetLastError();
  });
}

}  // namespace cuda
}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CUDA_QDQ_CUH_
