// The CPU loops of the FakeQuantWithMinMax{Args,Vars,VarsPerChannel} gradients
// (see cpu/blocks.h for what every CPU loop takes).
#ifndef TF_QDQ_CC_CORE_CPU_FAKE_QUANT_GRADIENT_H_
#define TF_QDQ_CC_CORE_CPU_FAKE_QUANT_GRADIENT_H_

#include <cstdint>
#include <type_traits>

#include "cc/core/cpu/blocks.h"
#include "cc/core/cpu/fake_quant.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {

// Gradient. wrt_min/wrt_max may be null (Args has no such outputs); otherwise
// they hold `depth` values, summed in the canonical order of layout.h.

template <typename T, typename WS, typename C = ComputeType<T>>
inline void TakeGradientScratch(const ChannelView& v, bool with_sums, WS& ws,
                                NudgedArrays<C>* nudged, double** partial_min,
                                double** partial_max) {
  *nudged = TakeNudgedScratch<T>(v, ws);
  *partial_min = *partial_max = nullptr;
  if (!with_sums) return;
  const int64_t partials = GradientSumChunks(v) * v.depth;
  *partial_min = ws.template Take<double>(partials);
  *partial_max = ws.template Take<double>(partials);
}

template <typename T>
size_t FakeQuantGradientWorkspaceBytes(const ChannelView& v, bool with_sums) {
  if (v.size() == 0) return 0;  // only the range backprops: zeros
  WorkspaceMeter meter;
  NudgedArrays<ComputeType<T>> n;
  double *a, *b;
  TakeGradientScratch<T>(v, with_sums, meter, &n, &a, &b);
  return meter.used();
}

// wrt_input for a block of one channel, plus the below/above contributions
// (each element's gradient or 0) when `to_min`/`to_max` are given.
// `n` is taken by value: through a reference GCC cannot prove that the stores
// to dx leave it unchanged, and the loop stays scalar (seen in the thread-pool
// path: 10x slower).
// kAct (no range sums): x is the activation's input, and dx is the gradient
// through the quantizer, then through the activation (ReluGrad's product).
template <typename C, Activation kAct = Activation::kLinear>
inline void GradientBlock(const C* __restrict g, const C* __restrict x, C* __restrict dx,
                          C* __restrict to_min, C* __restrict to_max, int64_t m,
                          const FakeQuantNudged<C> n) {
  if (n.zero_range) {  // min == max == 0: pass through, nothing to the range
    for (int64_t j = 0; j < m; ++j) {
      dx[j] = kAct == Activation::kLinear ? g[j] : g[j] * ActivationSlope<kAct>(x[j]);
    }
    if (to_min != nullptr) {
      for (int64_t j = 0; j < m; ++j) to_min[j] = to_max[j] = C(0);
    }
    return;
  }
  if (to_min == nullptr) {
    for (int64_t j = 0; j < m; ++j) {
      const C through = FakeQuantElementGradient(g[j], Activate<kAct>(x[j]), n).wrt_input;
      dx[j] = kAct == Activation::kLinear ? through : through * ActivationSlope<kAct>(x[j]);
    }
    return;
  }
  for (int64_t j = 0; j < m; ++j) {
    const FakeQuantGradientParts<C> p = FakeQuantElementGradient(g[j], x[j], n);
    dx[j] = p.wrt_input;
    to_min[j] = p.wrt_min;
    to_max[j] = p.wrt_max;
  }
}

// lanes[j % kFlatLanes] += values[j] (in double), for j in [0, m), in order.
template <typename C>
inline void AddToLanes(const C* __restrict values, int64_t m, double* __restrict lanes) {
  int64_t j = 0;
  for (; j + kFlatLanes <= m; j += kFlatLanes) {
#ifdef __AVX__
    if (std::is_same<C, float>::value) {
      for (int l = 0; l < kFlatLanes; l += 4) {
        const __m256d add = _mm256_cvtps_pd(
            _mm_loadu_ps(reinterpret_cast<const float*>(values) + j + l));
        _mm256_storeu_pd(lanes + l, _mm256_add_pd(_mm256_loadu_pd(lanes + l), add));
      }
      continue;
    }
#endif
    for (int l = 0; l < kFlatLanes; ++l) lanes[l] += static_cast<double>(values[j + l]);
  }
  for (int l = 0; j + l < m; ++l) lanes[l] += static_cast<double>(values[j + l]);
}

// Adds rows' staged float contributions to each channel's running double
// sums, in row order: lo[j] += rows[0][j], then rows[1][j], ... (one element
// width per loop, so it vectorises; kSumRows rows at once load and store each
// sum once).
constexpr int64_t kSumRows = 4;
constexpr int64_t kSumChannels = 256;
static_assert(kRowChunk % kSumRows == 0, "row groups inside a chunk");

template <typename C>
QDQ_INLINE void AddRowsToSums(const C (*to_min)[kSumChannels], const C (*to_max)[kSumChannels],
                              int64_t rows, int64_t w, double* __restrict lo,
                              double* __restrict hi) {
  if (rows == kSumRows) {
    for (int64_t j = 0; j < w; ++j) {
      double a = lo[j], b = hi[j];
      for (int64_t q = 0; q < kSumRows; ++q) {
        a += static_cast<double>(to_min[q][j]);
        b += static_cast<double>(to_max[q][j]);
      }
      lo[j] = a;
      hi[j] = b;
    }
  } else {
    for (int64_t q = 0; q < rows; ++q) {
      for (int64_t j = 0; j < w; ++j) {
        lo[j] += static_cast<double>(to_min[q][j]);
        hi[j] += static_cast<double>(to_max[q][j]);
      }
    }
  }
}

// The per-channel sums' iteration, in the canonical order (layout.h): for
// each chunk k in [k0, k1) of kRowChunk rows, its partial sums start at 0.0;
// then, per group of kSumRows rows and kSumChannels-wide strip of channels,
// strip(first_row, rows, c0, w) stages the rows' contributions and
// AddRowsToSums adds them to the chunk's sums.
template <typename C, typename Fn>
QDQ_INLINE void ForEachSumStrip(const ChannelView& v, double* partial_min, double* partial_max,
                                int64_t k0, int64_t k1, const C (*to_min)[kSumChannels],
                                const C (*to_max)[kSumChannels], Fn&& strip) {
  for (int64_t k = k0; k < k1; ++k) {
    double* __restrict pmin = partial_min + k * v.depth;
    double* __restrict pmax = partial_max + k * v.depth;
    for (int64_t c = 0; c < v.depth; ++c) pmin[c] = pmax[c] = 0.0;
    const int64_t r_end = (k + 1) * kRowChunk < v.outer ? (k + 1) * kRowChunk : v.outer;
    for (int64_t r = k * kRowChunk; r < r_end; r += kSumRows) {
      const int64_t rows = r_end - r < kSumRows ? r_end - r : kSumRows;
      for (int64_t c0 = 0; c0 < v.depth; c0 += kSumChannels) {
        const int64_t w = v.depth - c0 < kSumChannels ? v.depth - c0 : kSumChannels;
        strip(r, rows, c0, w);
        AddRowsToSums<C>(to_min, to_max, rows, w, pmin + c0, pmax + c0);
      }
    }
  }
}

// FakeQuantGradient (quantize_math.h) in a loop that runs with DAZ and FTZ
// set (ScopedFlushDenormals, x86). There `gradient * one` (one == 1.0f, read
// through a volatile so the compiler cannot fold it) is FlushDenormal(gradient)
// in one multiplication: a denormal enters it as a zero of its own sign, and
// anything else comes out unchanged. FlushDenormal's compare-and-select took 4
// of the loop's ~27 AVX instructions per vector.
template <typename C>
QDQ_INLINE FakeQuantGradientParts<C> FakeQuantGradientUnderDaz(C gradient, C x,
                                                               const FakeQuantNudged<C>& n,
                                                               C one) {
#ifdef TF_QDQ_X86_HOST
  const C between = (x >= n.nudged_min && x <= n.nudged_max) ? C(1) : C(0);
  const C below = (x < n.nudged_min) ? C(1) : C(0);
  const C above = (x > n.nudged_max) ? C(1) : C(0);
  const C g = gradient * one;
  return {g * between, g * below, g * above};
#else
  (void)one;
  return FakeQuantElementGradient(gradient, x, n);
#endif
}

// 1.0f that the compiler cannot see (FakeQuantGradientUnderDaz).
inline float OpaqueOne() {
  static volatile float one = 1.0f;
  return one;
}

// The per-channel gradient for float, chunks [k0, k1) of kRowChunk rows: each
// channel adds its rows in order (layout.h). kSumRows rows are done together,
// a kSumChannels-wide slice of channels at a time: their float contributions
// are staged in L1, then added to the running double sums (AddRowsToSums).
// kAnyZero: some min == max == 0 channel passes its gradient through;
// kStream: wrt_input is written with streaming stores.
template <bool kAnyZero, bool kStream>
QDQ_INLINE void FakeQuantGradientRowsBody(const FakeQuantGradientArgs<float>& args,
                                          const NudgedArrays<float>& na, double* partial_min,
                                          double* partial_max, int64_t k0, int64_t k1) {
  ScopedFlushDenormals flush;  // FakeQuantGradientUnderDaz relies on it
  const ChannelView& v = args.view;
  const float one = OpaqueOne();
  alignas(64) float to_min[kSumRows][kSumChannels], to_max[kSumRows][kSumChannels];
  alignas(64) float dx_buf[kSumChannels];
  ForEachSumStrip<float>(
      v, partial_min, partial_max, k0, k1, to_min, to_max,
      [&](int64_t r, int64_t rows, int64_t c0, int64_t w) {
        const float* __restrict nmin = na.nudged_min + c0;
        const float* __restrict nmax = na.nudged_max + c0;
        const float* __restrict zero_range = na.zero_range + c0;
        for (int64_t q = 0; q < rows; ++q) {
          const int64_t first = (r + q) * v.depth + c0;
          const float* __restrict g = args.gradients + first;
          const float* __restrict x = args.input + first;
          float* __restrict dx = kStream ? dx_buf : args.wrt_input + first;
          float* __restrict tmin = to_min[q];
          float* __restrict tmax = to_max[q];
          PrefetchAhead(g, w);
          PrefetchAhead(x, w);
          for (int64_t j = 0; j < w; ++j) {
            const FakeQuantNudged<float> n{nmin[j], nmax[j], 0.0f, 0.0f, 0.0f, false};
            const FakeQuantGradientParts<float> p = FakeQuantGradientUnderDaz(g[j], x[j], n, one);
            // min == max == 0 channels pass through, adding nothing.
            const bool pass = kAnyZero && zero_range[j] != 0.0f;
            dx[j] = pass ? g[j] : p.wrt_input;
            tmin[j] = pass ? 0.0f : p.wrt_min;
            tmax[j] = pass ? 0.0f : p.wrt_max;
          }
          if (kStream) StreamStore(dx_buf, args.wrt_input + first, w);
        }
      });
  if (kStream) StreamFence();
}

template <bool kAnyZero, bool kStream>
void FakeQuantGradientRows(const FakeQuantGradientArgs<float>& args, const NudgedArrays<float>& na,
                           double* partial_min, double* partial_max, int64_t k0, int64_t k1) {
  FakeQuantGradientRowsBody<kAnyZero, kStream>(args, na, partial_min, partial_max, k0, k1);
}
#ifdef TF_QDQ_HAVE_WIDE_PATH
// The same rows on AVX-512, written with intrinsics so that nothing is staged:
// per 16-channel strip and group of kSumRows rows, each channel's two running
// double sums stay in registers, the range is loaded once, and dx is stored
// (streamed) straight from the register. The per-element operations are those
// of FakeQuantGradientUnderDaz, in the same order (g * one, then g * between,
// g * below and g * above as products with 1 or 0, so an inf or NaN gradient
// still gives NaN where TF's product does), and each sum adds the same float
// contributions, widened to double, in the same row order: the same bits.
// Only which NaN a sum returns when two NaNs meet is not fixed (the compiler
// orders the operands of a commutative add, here as in the staged loop).
// Why intrinsics: GCC 12 compiles the staged loop to ~5.5 instructions per
// element on AVX (callgrind) and about half that on AVX-512 (staging stores,
// their reloads, a copy for the streaming store); this loop is 30 instructions
// per row of 16 elements, ~1.9 per element, and at 16M values runs in ~0.7x
// the staged loop's time (docs/performance.md).
template <bool kAnyZero, bool kStream>
TF_QDQ_WIDE_FN void FakeQuantGradientRowsWide(const FakeQuantGradientArgs<float>& args,
                                              const NudgedArrays<float>& na, double* partial_min,
                                              double* partial_max, int64_t k0, int64_t k1) {
  ScopedFlushDenormals flush;  // g * one is FlushDenormal(g) under DAZ
  const ChannelView& v = args.view;
  const int64_t depth = v.depth;
  const __m512 one = _mm512_set1_ps(OpaqueOne());
  const __m512 ones = _mm512_set1_ps(1.0f);
  // Locals, so that the stores through wrt_input do not reload them.
  const float* __restrict gradients = args.gradients;
  const float* __restrict input = args.input;
  float* __restrict wrt_input = args.wrt_input;
  for (int64_t k = k0; k < k1; ++k) {
    double* __restrict pmin = partial_min + k * depth;
    double* __restrict pmax = partial_max + k * depth;
    for (int64_t c = 0; c < depth; ++c) pmin[c] = pmax[c] = 0.0;
    const int64_t r_end = (k + 1) * kRowChunk < v.outer ? (k + 1) * kRowChunk : v.outer;
    for (int64_t r = k * kRowChunk; r < r_end; r += kSumRows) {
      const int64_t rows = r_end - r < kSumRows ? r_end - r : kSumRows;
      for (int64_t c = 0; c < depth; c += 16) {
        const __mmask16 lanes =
            depth - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (depth - c)) - 1u);
        const __mmask8 low = static_cast<__mmask8>(lanes);
        const __mmask8 high = static_cast<__mmask8>(lanes >> 8);
        const __m512 nmin = _mm512_maskz_loadu_ps(lanes, na.nudged_min + c);
        const __m512 nmax = _mm512_maskz_loadu_ps(lanes, na.nudged_max + c);
        // min == max == 0 channels pass g through and add +0.0 (no bit of a
        // sum that started from +0.0 changes).
        const __mmask16 pass =
            kAnyZero ? _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, na.zero_range + c),
                                               _mm512_setzero_ps(), _CMP_NEQ_UQ)
                     : __mmask16(0);
        __m512d min_low = _mm512_maskz_loadu_pd(low, pmin + c);
        __m512d min_high = _mm512_maskz_loadu_pd(high, pmin + c + 8);
        __m512d max_low = _mm512_maskz_loadu_pd(low, pmax + c);
        __m512d max_high = _mm512_maskz_loadu_pd(high, pmax + c + 8);
        for (int64_t q = 0; q < rows; ++q) {
          const int64_t first = (r + q) * depth + c;
          const __m512 raw_g = _mm512_maskz_loadu_ps(lanes, gradients + first);
          const __m512 x = _mm512_maskz_loadu_ps(lanes, input + first);
          const __m512 g = _mm512_mul_ps(raw_g, one);
          const __mmask16 below = _mm512_cmp_ps_mask(x, nmin, _CMP_LT_OQ);
          const __mmask16 above = _mm512_cmp_ps_mask(x, nmax, _CMP_GT_OQ);
          const __mmask16 between = _mm512_mask_cmp_ps_mask(
              _mm512_cmp_ps_mask(x, nmin, _CMP_GE_OQ), x, nmax, _CMP_LE_OQ);
          __m512 dx = _mm512_mul_ps(g, _mm512_maskz_mov_ps(between, ones));
          __m512 to_min = _mm512_mul_ps(g, _mm512_maskz_mov_ps(below, ones));
          __m512 to_max = _mm512_mul_ps(g, _mm512_maskz_mov_ps(above, ones));
          if (kAnyZero) {
            dx = _mm512_mask_mov_ps(dx, pass, raw_g);
            to_min = _mm512_maskz_mov_ps(static_cast<__mmask16>(~pass), to_min);
            to_max = _mm512_maskz_mov_ps(static_cast<__mmask16>(~pass), to_max);
          }
          float* out = wrt_input + first;
          if (kStream && lanes == 0xFFFF && (reinterpret_cast<uintptr_t>(out) & 63) == 0) {
            _mm512_stream_ps(out, dx);
          } else {
            _mm512_mask_storeu_ps(out, lanes, dx);
          }
          min_low = _mm512_add_pd(min_low, _mm512_cvtps_pd(_mm512_castps512_ps256(to_min)));
          min_high = _mm512_add_pd(min_high, _mm512_cvtps_pd(_mm512_extractf32x8_ps(to_min, 1)));
          max_low = _mm512_add_pd(max_low, _mm512_cvtps_pd(_mm512_castps512_ps256(to_max)));
          max_high = _mm512_add_pd(max_high, _mm512_cvtps_pd(_mm512_extractf32x8_ps(to_max, 1)));
        }
        _mm512_mask_storeu_pd(pmin + c, low, min_low);
        _mm512_mask_storeu_pd(pmin + c + 8, high, min_high);
        _mm512_mask_storeu_pd(pmax + c, low, max_low);
        _mm512_mask_storeu_pd(pmax + c + 8, high, max_high);
      }
    }
  }
  if (kStream) StreamFence();
}
#endif

template <typename T, typename ParallelFor>
void FakeQuantGradientCpu(const FakeQuantGradientArgs<T>& args, Workspace& ws,
                          ParallelFor&& pfor) {
  ScopedFlushDenormals flush;  // as TF's CPU kernels; pfor bodies set it too
  using C = ComputeType<T>;
  const ChannelView& v = args.view;
  const bool with_sums = args.wrt_min != nullptr;
  if (v.size() == 0) {  // empty sums: +0 for every channel, no workspace
    if (with_sums) {
      for (int64_t c = 0; c < v.depth; ++c) args.wrt_min[c] = args.wrt_max[c] = StoreAs<T>(C(0));
    }
    return;
  }
  NudgedArrays<C> na;
  double *partial_min, *partial_max;
  TakeGradientScratch<T>(v, with_sums, ws, &na, &partial_min, &partial_max);
  NudgeAll(v, args.range, args.bounds, args.zero_range_rule, na);
  const int64_t chunks = GradientSumChunks(v);
  const bool stream = PrepareOutput(args.wrt_input, v.size(), pfor);
  if (!with_sums) {  // per tensor: Args, and Vars without range consumers
    const FakeQuantNudged<C> n = na.Get(0);
    DispatchActivation(args.activation, [&](auto act) {
      pfor(v.size(), kElementwiseCost, [&](int64_t begin, int64_t end) {
        BinaryBlocks(
            args.gradients, args.input, args.wrt_input, begin, end - begin,
            [&](const C* g, const C* x, C* y, int64_t, int64_t m) {
              GradientBlock<C, decltype(act)::value>(g, x, y, nullptr, nullptr, m, n);
            },
            stream);
        if (stream) StreamFence();
      });
    });
    return;
  }
  if (v.depth == 1 && v.outer == 1) {
    // Per tensor: chunks of kFlatChunk elements, kFlatLanes lanes each.
    static_assert(kFlatChunk % kBlock == 0 && kBlock % kFlatLanes == 0, "chunk layout");
    const int64_t n_total = v.size();
    const FakeQuantNudged<C> n = na.Get(0);
    pfor(chunks, kFlatChunk * kElementwiseCost, [&](int64_t k0, int64_t k1) {
      alignas(64) C to_min[kBlock], to_max[kBlock];
      for (int64_t k = k0; k < k1; ++k) {
        alignas(64) double lanes_min[kFlatLanes] = {0.0};
        alignas(64) double lanes_max[kFlatLanes] = {0.0};
        const int64_t first = k * kFlatChunk;
        const int64_t count = n_total - first < kFlatChunk ? n_total - first : kFlatChunk;
        BinaryBlocks(args.gradients, args.input, args.wrt_input, first, count,
                     [&](const C* g, const C* x, C* y, int64_t, int64_t m) {
                       GradientBlock<C>(g, x, y, to_min, to_max, m, n);
                       // Blocks start at multiples of kFlatLanes: lane = j % kFlatLanes.
                       AddToLanes(to_min, m, lanes_min);
                       AddToLanes(to_max, m, lanes_max);
                     },
                     stream);
        partial_min[k] = TreeFoldLanes(lanes_min, kFlatLanes);
        partial_max[k] = TreeFoldLanes(lanes_max, kFlatLanes);
      }
      if (stream) StreamFence();
    });
  } else {
    // Per channel over [rows, depth] (inner == 1), 16-bit types (float has
    // FakeQuantGradientRows above, the same order).
    if constexpr (std::is_same<T, float>::value) {
      DispatchBools(AnyZeroChannel(na, v.depth), stream, [&](auto any_zero, auto streamed) {
        constexpr bool kZ = decltype(any_zero)::value, kS = decltype(streamed)::value;
        auto rows = &FakeQuantGradientRows<kZ, kS>;
#ifdef TF_QDQ_HAVE_WIDE_PATH
        if (CpuHasWideVectors()) rows = &FakeQuantGradientRowsWide<kZ, kS>;
#endif
        pfor(chunks, kRowChunk * v.depth * kElementwiseCost, [&](int64_t k0, int64_t k1) {
          rows(args, na, partial_min, partial_max, k0, k1);
        });
      });
    } else {
    pfor(chunks, kRowChunk * v.depth * kElementwiseCost, [&](int64_t k0, int64_t k1) {
      alignas(64) C to_min[kSumRows][kSumChannels], to_max[kSumRows][kSumChannels];
      ForEachSumStrip<C>(
          v, partial_min, partial_max, k0, k1, to_min, to_max,
          [&](int64_t r, int64_t rows, int64_t c0, int64_t w) {
            for (int64_t q = 0; q < rows; ++q) {
              C* __restrict row_min = to_min[q];
              C* __restrict row_max = to_max[q];
              BinaryBlocks<true>(
                  args.gradients, args.input, args.wrt_input, (r + q) * v.depth + c0, w,
                  [&](const C* __restrict g, const C* __restrict x, C* __restrict y,
                      int64_t b, int64_t m) {
                    const NudgedArrays<C> channel = na.From(c0 + b);
                    C* __restrict tmin = row_min + b;
                    C* __restrict tmax = row_max + b;
                    for (int64_t j = 0; j < m; ++j) {
                      const FakeQuantGradientParts<C> p =
                          FakeQuantElementGradient(g[j], x[j], channel.Range(j));
                      // min == max == 0 channels pass through, adding nothing.
                      const bool pass = channel.zero_range[j] != C(0);
                      y[j] = pass ? g[j] : p.wrt_input;
                      tmin[j] = pass ? C(0) : p.wrt_min;
                      tmax[j] = pass ? C(0) : p.wrt_max;
                    }
                  });
            }
          });
    });
    }
  }
  for (int64_t c = 0; c < v.depth; ++c) {
    args.wrt_min[c] = StoreDoubleAs<T>(
        CombinePartials(chunks, [&](int64_t k) { return partial_min[k * v.depth + c]; }));
    args.wrt_max[c] = StoreDoubleAs<T>(
        CombinePartials(chunks, [&](int64_t k) { return partial_max[k * v.depth + c]; }));
  }
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CPU_FAKE_QUANT_GRADIENT_H_
