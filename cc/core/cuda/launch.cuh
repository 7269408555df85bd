// What every CUDA kernel of the core shares: launch shapes, 32/64-bit index
// dispatch, and the contract below. The kernels (cuda/qdq.cuh,
// cuda/fake_quant.cuh) are framework-free: they compile with
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
#ifndef TF_QDQ_CC_CORE_CUDA_LAUNCH_CUH_
#define TF_QDQ_CC_CORE_CUDA_LAUNCH_CUH_

#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>

#include "cc/core/layout.h"

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

}  // namespace cuda
}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CUDA_LAUNCH_CUH_
