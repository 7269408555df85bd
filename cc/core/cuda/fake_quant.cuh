// The CUDA kernels of FakeQuantWithMinMax{Args,Vars,VarsPerChannel} and their
// gradients (the shared contract: cuda/launch.cuh).
#ifndef TF_QDQ_CC_CORE_CUDA_FAKE_QUANT_CUH_
#define TF_QDQ_CC_CORE_CUDA_FAKE_QUANT_CUH_

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
// FakeQuant: nudged ranges per channel, then element-wise passes.
// ---------------------------------------------------------------------------

template <typename T>
__device__ __forceinline__ FakeQuantNudged<ComputeType<T>> NudgeChannel(
    const RangeSource<T>& range, int64_t c, FakeQuantBounds bounds,
    bool zero_range_rule) {
  FakeQuantNudged<ComputeType<T>> n =
      NudgeFakeQuantRange(range.Min(c), range.Max(c), bounds);
  if (!zero_range_rule) n.zero_range = false;
  return n;
}

template <typename T>
__global__ void FakeQuantNudgeKernel(RangeSource<T> range, int64_t depth,
                                     FakeQuantBounds bounds, bool zero_range_rule,
                                     FakeQuantNudged<ComputeType<T>>* nudged) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (c < depth) nudged[c] = NudgeChannel(range, c, bounds, zero_range_rule);
}

// Nudged ranges for the block: from global memory, or computed into shared.
template <typename T, typename Index>
__device__ __forceinline__ const FakeQuantNudged<ComputeType<T>>* BlockNudged(
    const FakeQuantNudged<ComputeType<T>>* global_nudged, const RangeSource<T>& range,
    Index depth, FakeQuantBounds bounds, bool zero_range_rule) {
  using N = FakeQuantNudged<ComputeType<T>>;
  if (global_nudged != nullptr) return global_nudged;
  extern __shared__ unsigned char shared_bytes[];
  N* shared_nudged = reinterpret_cast<N*>(shared_bytes);
  for (Index c = threadIdx.x; c < depth; c += kThreads) {
    shared_nudged[c] = NudgeChannel(range, c, bounds, zero_range_rule);
  }
  __syncthreads();
  return shared_nudged;
}

template <typename T, GridStep kStep, typename Index>
__global__ void FakeQuantForwardKernel(FakeQuantArgs<T> args, Index n, Index depth,
                                       const FakeQuantNudged<ComputeType<T>>* global_nudged) {
  using C = ComputeType<T>;
  const FakeQuantNudged<C>* nudged = BlockNudged<T, Index>(
      global_nudged, args.range, depth, args.bounds, args.zero_range_rule);
  for (Index i = blockIdx.x * static_cast<Index>(kThreads) + threadIdx.x; i < n;
       i += static_cast<Index>(gridDim.x) * kThreads) {
    const FakeQuantNudged<C>& nz = nudged[depth == 1 ? 0 : i % depth];
    args.output[i] = nz.zero_range ? StoreAs<T>(C(0))
                                 : StoreAs<T>(FakeQuantize<kStep>(ToCompute(args.input[i]), nz));
  }
}

template <typename T, typename WS>
inline FakeQuantNudged<ComputeType<T>>* TakeCudaNudged(const ChannelView& v, WS& ws) {
  return v.depth > kSharedChannels ? ws.template Take<FakeQuantNudged<ComputeType<T>>>(v.depth)
                                   : nullptr;
}

template <typename T>
size_t FakeQuantForwardCudaWorkspaceBytes(const ChannelView& v) {
  if (v.size() == 0) return 0;  // the kernel returns at once
  WorkspaceMeter meter;
  TakeCudaNudged<T>(v, meter);
  return meter.used();
}

// Launch 1 (only with more than kSharedChannels channels): the nudges.
template <typename T>
inline FakeQuantNudged<ComputeType<T>>* LaunchNudges(const ChannelView& v,
                                                     const RangeSource<T>& range,
                                                     FakeQuantBounds bounds,
                                                     bool zero_range_rule, Workspace& ws,
                                                     cudaStream_t stream, size_t* shared) {
  FakeQuantNudged<ComputeType<T>>* nudged = TakeCudaNudged<T>(v, ws);
  if (nudged != nullptr) {
    FakeQuantNudgeKernel<T><<<GridFor(v.depth), kThreads, 0, stream>>>(
        range, v.depth, bounds, zero_range_rule, nudged);
    *shared = 0;
  } else {
    *shared = v.depth * sizeof(FakeQuantNudged<ComputeType<T>>);
  }
  return nudged;
}

template <GridStep kStep, typename T>
cudaError_t FakeQuantForwardCuda(const FakeQuantArgs<T>& args, void* workspace,
                                 size_t workspace_bytes, cudaStream_t stream) {
  const ChannelView& v = args.view;  // per tensor, or [rows, depth, 1]
  if (v.size() == 0) return cudaSuccess;
  Workspace ws(workspace, workspace_bytes);
  size_t shared;
  const FakeQuantNudged<ComputeType<T>>* nudged = LaunchNudges(
      v, args.range, args.bounds, args.zero_range_rule, ws, stream, &shared);
  if (ws.used() > workspace_bytes) return cudaErrorInvalidValue;
  return DispatchIndex(v.size(), [&](auto index_tag) -> cudaError_t {
    using Index = decltype(index_tag);
    FakeQuantForwardKernel<T, kStep, Index>
        <<<GridFor(v.size(), kThreads * 4), kThreads, shared, stream>>>(
            args, v.size(), v.depth, nudged);
    return cudaGetLastError();
  });
}

// ---- gradients ---------------------------------------------------------------

template <typename C>
struct GradientContribution {
  C to_min;
  C to_max;
};

template <typename T>
__device__ __forceinline__ GradientContribution<ComputeType<T>> GradientElement(
    const FakeQuantGradientArgs<T>& args, const FakeQuantNudged<ComputeType<T>>& n,
    int64_t i) {
  using C = ComputeType<T>;
  if (n.zero_range) {
    args.wrt_input[i] = args.gradients[i];
    return {C(0), C(0)};
  }
  const FakeQuantGradientParts<C> p =
      FakeQuantElementGradient(ToCompute(args.gradients[i]), ToCompute(args.input[i]), n);
  args.wrt_input[i] = StoreAs<T>(p.wrt_input);
  return {p.wrt_min, p.wrt_max};
}

// Args gradient (no sums): one element-wise launch.
template <typename T, typename Index>
__global__ void FakeQuantGradientNoSumsKernel(FakeQuantGradientArgs<T> args, Index n) {
  const FakeQuantNudged<ComputeType<T>>* nudged = BlockNudged<T, Index>(
      nullptr, args.range, 1, args.bounds, args.zero_range_rule);
  for (Index i = blockIdx.x * static_cast<Index>(kThreads) + threadIdx.x; i < n;
       i += static_cast<Index>(gridDim.x) * kThreads) {
    GradientElement(args, nudged[0], i);
  }
}

// Per tensor, launch 1: each group of kFlatLanes threads owns one chunk of
// kFlatChunk elements; lane j adds the chunk's offsets j, j + kFlatLanes, ...
// in order, then the lanes fold as in TreeFoldLanes (layout.h).
constexpr int kChunksPerBlock = kThreads / kFlatLanes;

template <typename T>
__global__ void FakeQuantFlatChunkGradientKernel(FakeQuantGradientArgs<T> args,
                                                 int64_t n, int64_t chunks,
                                                 double* partial_min,
                                                 double* partial_max) {
  __shared__ double lanes_min[kThreads], lanes_max[kThreads];
  const FakeQuantNudged<ComputeType<T>>* nudged = BlockNudged<T, int64_t>(
      nullptr, args.range, 1, args.bounds, args.zero_range_rule);
  const int group = threadIdx.x / kFlatLanes;
  const int lane = threadIdx.x % kFlatLanes;
  const int64_t chunk = static_cast<int64_t>(blockIdx.x) * kChunksPerBlock + group;
  double acc_min = 0.0, acc_max = 0.0;
  if (chunk < chunks) {
    const int64_t first = chunk * kFlatChunk;
    const int64_t count = n - first < kFlatChunk ? n - first : kFlatChunk;
    for (int64_t o = lane; o < count; o += kFlatLanes) {
      const GradientContribution<ComputeType<T>> g =
          GradientElement(args, nudged[0], first + o);
      acc_min += static_cast<double>(g.to_min);
      acc_max += static_cast<double>(g.to_max);
    }
  }
  double* my_min = lanes_min + group * kFlatLanes;
  double* my_max = lanes_max + group * kFlatLanes;
  my_min[lane] = acc_min;
  my_max[lane] = acc_max;
  __syncthreads();
  for (int s = kFlatLanes / 2; s > 0; s >>= 1) {
    if (lane < s) {
      my_min[lane] += my_min[lane + s];
      my_max[lane] += my_max[lane + s];
    }
    __syncthreads();
  }
  if (lane == 0 && chunk < chunks) {
    partial_min[chunk] = my_min[0];
    partial_max[chunk] = my_max[0];
  }
}

// Per channel ([rows, depth]), launch 1: thread (chunk k, channel c) adds the
// chunk's kRowChunk rows of channel c in order (coalesced across channels).
// Each thread nudges its own channel: one nudge per kRowChunk elements, and no
// separate nudge launch.
template <typename T>
__global__ void FakeQuantRowChunkGradientKernel(FakeQuantGradientArgs<T> args,
                                                int64_t rows, int64_t depth, int64_t chunks,
                                                double* partial_min, double* partial_max) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; c < depth;
       c += static_cast<int64_t>(gridDim.x) * kThreads) {
    const FakeQuantNudged<ComputeType<T>> nudged =
        NudgeChannel(args.range, c, args.bounds, args.zero_range_rule);
    for (int64_t k = blockIdx.y; k < chunks; k += gridDim.y) {  // grid.y <= 65535
      const int64_t r_end = (k + 1) * kRowChunk < rows ? (k + 1) * kRowChunk : rows;
      double acc_min = 0.0, acc_max = 0.0;
      for (int64_t r = k * kRowChunk; r < r_end; ++r) {
        const GradientContribution<ComputeType<T>> g =
            GradientElement(args, nudged, r * depth + c);
        acc_min += static_cast<double>(g.to_min);
        acc_max += static_cast<double>(g.to_max);
      }
      partial_min[k * depth + c] = acc_min;
      partial_max[k * depth + c] = acc_max;
    }
  }
}

// Launch 2: block c combines channel c's partials in CombinePartials' order.
template <typename T>
__global__ void CombinePartialsKernel(const double* partial_min, const double* partial_max,
                                      int64_t chunks, int64_t depth, T* wrt_min, T* wrt_max) {
  __shared__ double lanes_min[kCombineLanes], lanes_max[kCombineLanes];
  static_assert(kCombineLanes == kThreads, "one lane per thread");
  const int64_t c = blockIdx.x;
  double acc_min = 0.0, acc_max = 0.0;
  for (int64_t k = threadIdx.x; k < chunks; k += kCombineLanes) {
    acc_min += partial_min[k * depth + c];
    acc_max += partial_max[k * depth + c];
  }
  lanes_min[threadIdx.x] = acc_min;
  lanes_max[threadIdx.x] = acc_max;
  __syncthreads();
  for (int s = kCombineLanes / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      lanes_min[threadIdx.x] += lanes_min[threadIdx.x + s];
      lanes_max[threadIdx.x] += lanes_max[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    wrt_min[c] = StoreDoubleAs<T>(lanes_min[0]);
    wrt_max[c] = StoreDoubleAs<T>(lanes_max[0]);
  }
}

template <typename T, typename WS>
inline void TakeCudaGradientScratch(const ChannelView& v, bool with_sums, WS& ws,
                                    double** partial_min, double** partial_max) {
  *partial_min = *partial_max = nullptr;
  if (!with_sums) return;
  const int64_t partials = GradientSumChunks(v) * v.depth;
  *partial_min = ws.template Take<double>(partials);
  *partial_max = ws.template Take<double>(partials);
}

template <typename T>
size_t FakeQuantGradientCudaWorkspaceBytes(const ChannelView& v, bool with_sums) {
  WorkspaceMeter meter;
  double *a, *b;
  TakeCudaGradientScratch<T>(v, with_sums, meter, &a, &b);
  return meter.used();
}

template <typename T>
cudaError_t FakeQuantGradientCuda(const FakeQuantGradientArgs<T>& args, void* workspace,
                                  size_t workspace_bytes, cudaStream_t stream) {
  const ChannelView& v = args.view;
  const bool with_sums = args.wrt_min != nullptr;
  const bool per_tensor = v.depth == 1 && v.outer == 1;
  if (!with_sums) {  // Args: per tensor, one launch
    if (v.size() == 0) return cudaSuccess;
    const size_t shared = sizeof(FakeQuantNudged<ComputeType<T>>);
    return DispatchIndex(v.size(), [&](auto index_tag) -> cudaError_t {
      using Index = decltype(index_tag);
      FakeQuantGradientNoSumsKernel<T, Index>
          <<<GridFor(v.size(), kThreads * 4), kThreads, shared, stream>>>(args, v.size());
      return cudaGetLastError();
    });
  }
  if (v.depth == 0) return cudaSuccess;
  Workspace ws(workspace, workspace_bytes);
  double *partial_min, *partial_max;
  TakeCudaGradientScratch<T>(v, true, ws, &partial_min, &partial_max);
  if (ws.used() > workspace_bytes) return cudaErrorInvalidValue;
  const int64_t chunks = GradientSumChunks(v);
  if (per_tensor) {
    const size_t shared = sizeof(FakeQuantNudged<ComputeType<T>>);
    if (chunks > 0) {
      FakeQuantFlatChunkGradientKernel<T>
          <<<GridFor(chunks, kChunksPerBlock), kThreads, shared, stream>>>(
              args, v.size(), chunks, partial_min, partial_max);
    }
  } else if (chunks > 0) {
    const dim3 grid(GridFor(v.depth), static_cast<unsigned>(chunks < 65535 ? chunks : 65535));
    FakeQuantRowChunkGradientKernel<T><<<grid, kThreads, 0, stream>>>(
        args, v.outer, v.depth, chunks, partial_min, partial_max);
  }
  // Launch 2. With no chunks (empty input) it writes +0 sums.
  CombinePartialsKernel<T><<<static_cast<unsigned>(v.depth), kCombineLanes, 0, stream>>>(
      partial_min, partial_max, chunks, v.depth, args.wrt_min, args.wrt_max);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CUDA_FAKE_QUANT_CUH_
