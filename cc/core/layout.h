// How tf-qdq sees a tensor: the [outer, depth, inner] channel view, the
// caller-provided workspace, and the canonical order of its deterministic sums.
// Framework-free; host and device.
#ifndef TF_QDQ_CC_CORE_LAYOUT_H_
#define TF_QDQ_CC_CORE_LAYOUT_H_

#include <cstddef>
#include <cstdint>

#include "cc/core/numeric.h"

namespace tf_qdq {
namespace core {

// A tensor seen as [outer, depth, inner] around its channel axis: element
// (o, c, k) lives at flat index (o * depth + c) * inner + k. Per-tensor ops use
// depth 1; FakeQuant per-channel uses inner 1 (the channel is the last axis).
struct ChannelView {
  int64_t outer;
  int64_t depth;
  int64_t inner;

  QDQ_INLINE int64_t size() const { return outer * depth * inner; }
};

QDQ_INLINE ChannelView PerTensorView(int64_t size) { return {1, 1, size}; }

// Calls `same_channel(c, first, count)` for each maximal run of consecutive
// flat elements in [begin, end) that share channel c, or, when channels are
// contiguous (inner == 1), `channel_run(c0, first, count)` for runs whose
// element j has channel c0 + j. The second form lets the inner loop vectorise
// over channels instead of making one call per element.
template <typename SameChannelFn, typename ChannelRunFn>
inline void ForEachChannelRun(const ChannelView& v, int64_t begin, int64_t end,
                              SameChannelFn&& same_channel,
                              ChannelRunFn&& channel_run) {
  if (begin >= end) return;
  if (v.inner == 1) {
    int64_t c = begin % v.depth;
    for (int64_t i = begin; i < end;) {
      const int64_t count =
          (v.depth - c < end - i) ? (v.depth - c) : (end - i);
      channel_run(c, i, count);
      i += count;
      c = 0;
    }
    return;
  }
  int64_t c = (begin / v.inner) % v.depth;
  int64_t k = begin % v.inner;
  for (int64_t i = begin; i < end;) {
    const int64_t count = (v.inner - k < end - i) ? (v.inner - k) : (end - i);
    same_channel(c, i, count);
    i += count;
    k = 0;
    if (++c == v.depth) c = 0;
  }
}

// Typed slices of one caller-provided byte buffer (the TF kernels get it from
// ctx->allocate_temp, the core module from a std::vector). Each op states its
// need with a *WorkspaceBytes() function that runs the same Take sequence.
class Workspace {
 public:
  Workspace(void* data, size_t bytes)
      : data_(static_cast<char*>(data)), capacity_(bytes) {}
  template <typename U>
  U* Take(int64_t count) {
    used_ = (used_ + alignof(U) - 1) / alignof(U) * alignof(U);
    U* p = reinterpret_cast<U*>(data_ + used_);
    used_ += static_cast<size_t>(count) * sizeof(U);
    return used_ <= capacity_ ? p : nullptr;
  }
  size_t used() const { return used_; }

 private:
  char* data_;
  size_t capacity_;
  size_t used_ = 0;
};

// A Workspace that only measures (for the *WorkspaceBytes() functions).
class WorkspaceMeter {
 public:
  template <typename U>
  U* Take(int64_t count) {
    used_ = (used_ + alignof(U) - 1) / alignof(U) * alignof(U);
    used_ += static_cast<size_t>(count) * sizeof(U);
    return nullptr;
  }
  size_t used() const { return used_; }

 private:
  size_t used_ = 0;
};

// ---------------------------------------------------------------------------
// Canonical summation order of the FakeQuant min/max backprops.
//
// Sums are accumulated in double in an order fixed by the tensor's shape alone,
// so the result does not depend on the thread count, and CPU and GPU kernels
// (which both follow this order) give the same bits.
//
// Per tensor (flat sequence v[0..n)):
//   1. chunk k covers v[k*kFlatChunk, (k+1)*kFlatChunk);
//   2. inside a chunk, lane j (0..kFlatLanes-1) adds the chunk's elements at
//      offsets j, j+kFlatLanes, ... in order, starting from 0.0; the lanes are
//      then folded by TreeFoldLanes;
//   3. chunk sums are combined by CombinePartials.
// Per channel ([rows, depth], channel = last axis):
//   1. chunk k covers rows [k*kRowChunk, (k+1)*kRowChunk);
//   2. inside a chunk each channel adds its rows in order, starting from 0.0;
//   3. each channel's chunk sums are combined by CombinePartials.
// CombinePartials(p[0..m)): lane j (0..kCombineLanes-1) adds p[j], p[j+L], ...
// in order from 0.0, then TreeFoldLanes.
// TreeFoldLanes(lanes, L): for s = L/2, L/4, ..., 1: lanes[j] += lanes[j+s]
// for j < s. Result lanes[0]. A GPU block computes each level in parallel and
// gets the same bits, since the lanes of one level are independent.
// ---------------------------------------------------------------------------
constexpr int64_t kFlatChunk = 4096;
constexpr int kFlatLanes = 64;
constexpr int64_t kRowChunk = 256;
constexpr int kCombineLanes = 256;

QDQ_INLINE int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Number of partial sums per channel: flat chunks per tensor, row chunks per
// channel.
QDQ_INLINE int64_t GradientSumChunks(const ChannelView& v) {
  return v.depth == 1 && v.outer == 1 ? CeilDiv(v.size(), kFlatChunk)
                                      : CeilDiv(v.outer, kRowChunk);
}

QDQ_INLINE double TreeFoldLanes(double* lanes, int num_lanes) {
  for (int stride = num_lanes / 2; stride > 0; stride /= 2) {
    for (int j = 0; j < stride; ++j) lanes[j] += lanes[j + stride];
  }
  return lanes[0];
}

// get(i) returns partial i; see the canonical order above.
//
// Only the lanes some partial reached are stored and folded: the others hold
// +0.0, and adding +0.0 changes no bit of a sum that started from +0.0 (such
// a sum is never -0.0 under round-to-nearest). So this equals the full
// kCombineLanes-wide tree that the GPU folds, in O(count) instead of
// O(kCombineLanes) per channel.
template <typename GetPartial>
QDQ_INLINE double CombinePartials(int64_t count, GetPartial&& get) {
  double lanes[kCombineLanes];
  const int used = count < kCombineLanes ? static_cast<int>(count) : kCombineLanes;
  for (int j = 0; j < used; ++j) lanes[j] = 0.0;
  for (int64_t i = 0; i < count; ++i) lanes[i % kCombineLanes] += get(i);
  int occupied = used;
  for (int stride = kCombineLanes / 2; stride > 0; stride /= 2) {
    for (int j = 0; j < stride && j + stride < occupied; ++j) lanes[j] += lanes[j + stride];
    if (occupied > stride) occupied = stride;
  }
  return used > 0 ? lanes[0] : 0.0;
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_LAYOUT_H_
