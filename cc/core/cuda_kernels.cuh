// CUDA implementations of every tf-qdq op, framework-free: they compile with
// clang (TF's op library, against TF's CUDA 12.5 headers) and with nvcc (the
// standalone core module on a GPU machine).
//
// Contract, shared by all ops:
//  * the maths is quantize_math.h, the same functions the CPU loops call;
//  * device code is compiled WITHOUT floating-point contraction (clang
//    -ffp-contract=off, nvcc --fmad=false): TF's CPU kernels round every step
//    separately, and an FMA in floor(x * s + 0.5) or s * inv - qz would change
//    near-tie results;
//  * no device-to-host synchronisation: ranges, scales and nudges are computed
//    on the device, and min/max inputs may live in device memory;
//  * at most two kernel launches per op; per-channel ops are single launches
//    over the whole [outer, depth, inner] view;
//  * gradient sums follow layout.h's canonical order with no atomics, so they
//    are deterministic and equal to the CPU kernels' sums;
//  * temporary memory is the caller's (`workspace`, sized by the matching
//    *WorkspaceBytes function; TF kernels take it from ctx->allocate_temp).
#ifndef TF_QDQ_CC_CORE_CUDA_KERNELS_CUH_
#define TF_QDQ_CC_CORE_CUDA_KERNELS_CUH_

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {
namespace cuda {

constexpr int kThreads = 256;
// Per-channel constants of up to this many channels are computed by every
// block into shared memory; beyond it, by a first launch into global memory.
constexpr int64_t kSharedChannels = 1024;
// Blocks the range reduction aims for when there are few channels.
constexpr int64_t kReductionBlocks = 1024;

inline unsigned GridFor(int64_t work, int64_t per_block = kThreads) {
  const int64_t blocks = CeilDiv(work, per_block);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > (1 << 20) ? (1 << 20) : blocks));  // see kMaxGridStride
}

// Channel of flat element i in the view. Index is int32_t when the tensor is
// small enough: 64-bit division is several times slower on the GPU.
template <typename Index>
__device__ __forceinline__ Index ChannelOf(Index i, Index depth, Index inner) {
  return inner == 1 ? i % depth : (i / inner) % depth;
}

// 32-bit indices only while a grid-stride loop cannot step past INT32_MAX:
// i < n plus one stride of at most 2^20 blocks x kThreads threads.
constexpr int64_t kMaxGridStride = (int64_t{1} << 20) * kThreads;

template <typename Fn>
inline cudaError_t DispatchIndex(int64_t n, Fn&& fn) {
  if (n + kMaxGridStride < (int64_t{1} << 31)) return fn(int32_t{0});
  return fn(int64_t{0});
}

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

// ---------------------------------------------------------------------------
// FakeQuant: nudged ranges per channel, then element-wise passes.
// ---------------------------------------------------------------------------

template <typename T>
__device__ __forceinline__ FakeQuantNudged<ComputeType<T>> NudgeChannel(
    const RangeSource<T>& range, int64_t c, FakeQuantBounds bounds,
    bool zero_range_special) {
  FakeQuantNudged<ComputeType<T>> n =
      NudgeFakeQuantRange(range.Min(c), range.Max(c), bounds);
  if (!zero_range_special) n.all_zero = false;
  return n;
}

template <typename T>
__global__ void FakeQuantNudgeKernel(RangeSource<T> range, int64_t depth,
                                     FakeQuantBounds bounds, bool zero_range_special,
                                     FakeQuantNudged<ComputeType<T>>* nudged) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (c < depth) nudged[c] = NudgeChannel(range, c, bounds, zero_range_special);
}

// Nudged ranges for the block: from global memory, or computed into shared.
template <typename T, typename Index>
__device__ __forceinline__ const FakeQuantNudged<ComputeType<T>>* BlockNudged(
    const FakeQuantNudged<ComputeType<T>>* global_nudged, const RangeSource<T>& range,
    Index depth, FakeQuantBounds bounds, bool zero_range_special) {
  using N = FakeQuantNudged<ComputeType<T>>;
  if (global_nudged != nullptr) return global_nudged;
  extern __shared__ unsigned char shared_bytes[];
  N* shared_nudged = reinterpret_cast<N*>(shared_bytes);
  for (Index c = threadIdx.x; c < depth; c += kThreads) {
    shared_nudged[c] = NudgeChannel(range, c, bounds, zero_range_special);
  }
  __syncthreads();
  return shared_nudged;
}

template <typename T, GridStep kStep, typename Index>
__global__ void FakeQuantForwardKernel(FakeQuantArgs<T> args, Index n, Index depth,
                                       const FakeQuantNudged<ComputeType<T>>* global_nudged) {
  using C = ComputeType<T>;
  const FakeQuantNudged<C>* nudged = BlockNudged<T, Index>(
      global_nudged, args.range, depth, args.bounds, args.zero_range_outputs_zero);
  for (Index i = blockIdx.x * static_cast<Index>(kThreads) + threadIdx.x; i < n;
       i += static_cast<Index>(gridDim.x) * kThreads) {
    const FakeQuantNudged<C>& nz = nudged[depth == 1 ? 0 : i % depth];
    args.output[i] = nz.all_zero ? StoreAs<T>(C(0))
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
                                                     bool zero_range_special, Workspace& ws,
                                                     cudaStream_t stream, size_t* shared) {
  FakeQuantNudged<ComputeType<T>>* nudged = TakeCudaNudged<T>(v, ws);
  if (nudged != nullptr) {
    FakeQuantNudgeKernel<T><<<GridFor(v.depth), kThreads, 0, stream>>>(
        range, v.depth, bounds, zero_range_special, nudged);
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
      v, args.range, args.bounds, args.zero_range_outputs_zero, ws, stream, &shared);
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
  if (n.all_zero) {
    args.wrt_input[i] = args.gradients[i];
    return {C(0), C(0)};
  }
  const FakeQuantGradientParts<C> p =
      FakeQuantGradient(ToCompute(args.gradients[i]), ToCompute(args.input[i]), n);
  args.wrt_input[i] = StoreAs<T>(p.wrt_input);
  return {p.wrt_min, p.wrt_max};
}

// Args gradient (no sums): one element-wise launch.
template <typename T, typename Index>
__global__ void FakeQuantGradientNoSumsKernel(FakeQuantGradientArgs<T> args, Index n) {
  const FakeQuantNudged<ComputeType<T>>* nudged = BlockNudged<T, Index>(
      nullptr, args.range, 1, args.bounds, args.zero_range_passes_through);
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
      nullptr, args.range, 1, args.bounds, args.zero_range_passes_through);
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
        NudgeChannel(args.range, c, args.bounds, args.zero_range_passes_through);
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

#endif  // TF_QDQ_CC_CORE_CUDA_KERNELS_CUH_
