// The CPU min/max of each channel, for QuantizeAndDequantizeV4 with a range
// taken from the data (see cpu/blocks.h for what every CPU loop takes).
#ifndef TF_QDQ_CC_CORE_CPU_MIN_MAX_H_
#define TF_QDQ_CC_CORE_CPU_MIN_MAX_H_

#include <cstdint>

#include "cc/core/cpu/blocks.h"
#include "cc/core/layout.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

// ---------------------------------------------------------------------------
// Min/max of each channel, NaNs skipped.
//
// The inner loops use plain compares (vectorisable; a zero found first wins).
// The sign of a zero minimum never changes a QDQ output; that of a zero
// maximum can (unsigned, all data <= 0), so a channel whose maximum is zero
// gets the order-independent rule of RunningMax: +0 if any +0 is present.
// ---------------------------------------------------------------------------

template <typename C>
inline void RunMinMax(const C* __restrict x, int64_t count, C* min_out, C* max_out) {
  constexpr int kLanes = 16;
  C mn[kLanes], mx[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    mn[j] = Infinity<C>();
    mx[j] = -Infinity<C>();
  }
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const C v = x[i + j];
      mn[j] = v < mn[j] ? v : mn[j];
      mx[j] = mx[j] < v ? v : mx[j];
    }
  }
  for (; i < count; ++i) {
    mn[0] = x[i] < mn[0] ? x[i] : mn[0];
    mx[0] = mx[0] < x[i] ? x[i] : mx[0];
  }
  C a = *min_out, b = *max_out;
  for (int j = 0; j < kLanes; ++j) {
    a = RunningMin(a, mn[j]);
    b = RunningMax(b, mx[j]);
  }
  *min_out = a;
  *max_out = b;
}

#ifdef __AVX__
// GCC does not vectorise the select form above. vminps(v, acc) is exactly
// `v < acc ? v : acc` (acc when v is NaN or equal), likewise vmaxps.
template <>
inline void RunMinMax<float>(const float* __restrict x, int64_t count, float* min_out,
                             float* max_out) {
  __m256 mn0 = _mm256_set1_ps(Infinity<float>()), mn1 = mn0;
  __m256 mx0 = _mm256_set1_ps(-Infinity<float>()), mx1 = mx0;
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    mn0 = _mm256_min_ps(v0, mn0);
    mn1 = _mm256_min_ps(v1, mn1);
    mx0 = _mm256_max_ps(v0, mx0);
    mx1 = _mm256_max_ps(v1, mx1);
  }
  alignas(32) float lanes[32];
  _mm256_store_ps(lanes, mn0);
  _mm256_store_ps(lanes + 8, mn1);
  _mm256_store_ps(lanes + 16, mx0);
  _mm256_store_ps(lanes + 24, mx1);
  float a = *min_out, b = *max_out;
  for (int j = 0; j < 16; ++j) {
    a = RunningMin(a, lanes[j]);
    b = RunningMax(b, lanes[16 + j]);
  }
  for (; i < count; ++i) {
    a = RunningMin(a, x[i]);
    b = RunningMax(b, x[i]);
  }
  *min_out = a;
  *max_out = b;
}
#endif

template <typename T, typename C = ComputeType<T>>
inline void RunMinMaxStored(const T* x, int64_t count, C* min_out, C* max_out) {
  alignas(64) C buf[kBlock];
  for (int64_t b = 0; b < count; b += kBlock) {
    const int64_t m = count - b < kBlock ? count - b : kBlock;
    RunMinMax(LoadBlock(x + b, m, buf), m, min_out, max_out);
  }
}

// Does channel c contain a +0? (Only asked when its maximum is zero.)
template <typename T>
inline bool ChannelHasPositiveZero(const T* x, const ChannelView& v, int64_t c) {
  for (int64_t o = 0; o < v.outer; ++o) {
    const T* row = x + (o * v.depth + c) * v.inner;
    for (int64_t k = 0; k < v.inner; ++k) {
      const ComputeType<T> value = ToCompute(row[k]);
      if (value == 0 && !std::signbit(value)) return true;
    }
  }
  return false;
}

constexpr int64_t kLongChannelRun = 64;
constexpr int64_t kMinMaxBlockElements = 1 << 16;
constexpr int64_t kMaxMinMaxBlocks = 32;

inline int64_t MinMaxRowsPerBlock(const ChannelView& v) {
  const int64_t row = v.depth * v.inner;
  int64_t rows = CeilDiv(kMinMaxBlockElements, row > 0 ? row : 1);
  if (CeilDiv(v.outer, rows) > kMaxMinMaxBlocks) rows = CeilDiv(v.outer, kMaxMinMaxBlocks);
  return rows > 0 ? rows : 1;
}

inline bool MinMaxPerChannelTask(const ChannelView& v) {
  return v.depth > 1 && v.inner >= kLongChannelRun;
}

template <typename C, typename WS>
inline void TakeMinMaxScratch(const ChannelView& v, WS& ws, C** partial_min,
                              C** partial_max) {
  *partial_min = *partial_max = nullptr;
  if (MinMaxPerChannelTask(v)) return;
  const int64_t blocks = v.depth == 1 ? CeilDiv(v.size(), kMinMaxBlockElements)
                                      : CeilDiv(v.outer, MinMaxRowsPerBlock(v)) * v.depth;
  *partial_min = ws.template Take<C>(blocks);
  *partial_max = ws.template Take<C>(blocks);
}

template <typename T, typename ParallelFor, typename C = ComputeType<T>>
void ChannelMinMax(const T* x, const ChannelView& v, C* mins, C* maxs, C* partial_min,
                   C* partial_max, ParallelFor&& pfor) {
  const C kInf = Infinity<C>();
  if (v.depth == 1) {  // per tensor: flat blocks
    const int64_t n = v.size();
    const int64_t blocks = CeilDiv(n, kMinMaxBlockElements);
    pfor(blocks, kMinMaxBlockElements, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t first = b * kMinMaxBlockElements;
        const int64_t count =
            n - first < kMinMaxBlockElements ? n - first : kMinMaxBlockElements;
        partial_min[b] = kInf;
        partial_max[b] = -kInf;
        RunMinMaxStored(x + first, count, &partial_min[b], &partial_max[b]);
      }
    });
    C mn = kInf, mx = -kInf;
    for (int64_t b = 0; b < blocks; ++b) {
      mn = RunningMin(mn, partial_min[b]);
      mx = RunningMax(mx, partial_max[b]);
    }
    mins[0] = mn;
    maxs[0] = mx;
  } else if (MinMaxPerChannelTask(v)) {  // long contiguous runs: a task per channel
    pfor(v.depth, v.outer * v.inner, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        C mn = kInf, mx = -kInf;
        for (int64_t o = 0; o < v.outer; ++o) {
          RunMinMaxStored(x + (o * v.depth + c) * v.inner, v.inner, &mn, &mx);
        }
        mins[c] = mn;
        maxs[c] = mx;
      }
    });
  } else {  // short runs: blocks of rows with partial min/max per channel
    const int64_t rows_per_block = MinMaxRowsPerBlock(v);
    const int64_t blocks = CeilDiv(v.outer, rows_per_block);
    const int64_t row = v.depth * v.inner;
    pfor(blocks, rows_per_block * row, [&](int64_t b0, int64_t b1) {
      alignas(64) C buf[kBlock];
      for (int64_t b = b0; b < b1; ++b) {
        C* __restrict pmin = partial_min + b * v.depth;
        C* __restrict pmax = partial_max + b * v.depth;
        for (int64_t c = 0; c < v.depth; ++c) {
          pmin[c] = kInf;
          pmax[c] = -kInf;
        }
        const int64_t o_end =
            (b + 1) * rows_per_block < v.outer ? (b + 1) * rows_per_block : v.outer;
        ForEachChannelRun(
            v, b * rows_per_block * row, o_end * row,
            [&](int64_t c, int64_t first, int64_t count) {
              RunMinMaxStored(x + first, count, &pmin[c], &pmax[c]);
            },
            [&](int64_t c0, int64_t first, int64_t count) {
              for (int64_t s = 0; s < count; s += kBlock) {
                const int64_t m = count - s < kBlock ? count - s : kBlock;
                const C* __restrict val = LoadBlock(x + first + s, m, buf);
                C* __restrict lo = pmin + c0 + s;
                C* __restrict hi = pmax + c0 + s;
                for (int64_t j = 0; j < m; ++j) {
                  lo[j] = val[j] < lo[j] ? val[j] : lo[j];
                  hi[j] = hi[j] < val[j] ? val[j] : hi[j];
                }
              }
            });
      }
    });
    pfor(v.depth, blocks, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        C mn = kInf, mx = -kInf;
        for (int64_t b = 0; b < blocks; ++b) {
          mn = RunningMin(mn, partial_min[b * v.depth + c]);
          mx = RunningMax(mx, partial_max[b * v.depth + c]);
        }
        mins[c] = mn;
        maxs[c] = mx;
      }
    });
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    if (maxs[c] == 0) maxs[c] = ChannelHasPositiveZero(x, v, c) ? C(0) : -C(0);
  }
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_MIN_MAX_H_
