// The single source of truth for tf-qdq's arithmetic.
//
// Every formula here follows TensorFlow 2.21's CPU kernels in exact operation
// order (see docs/semantics.md, cited below as "docs/semantics.md §N").
// The CPU loops (cpu/*.h), the CUDA kernels (cuda/*.cuh) and the pybind11
// core module call these functions and nothing else for the maths.
//
// Bit-exactness rules that every caller must keep:
//  * each arithmetic step is a separately rounded IEEE operation in the compute
//    type C: compile with -ffp-contract=off (host) / no FMA contraction (device);
//  * 16-bit storage types are computed in float and rounded once on store.
#ifndef TF_QDQ_CC_CORE_QUANTIZE_MATH_H_
#define TF_QDQ_CC_CORE_QUANTIZE_MATH_H_

#include <cstdint>
#include <type_traits>

#include "cc/core/numeric.h"

namespace tf_qdq {
namespace core {

// ---------------------------------------------------------------------------
// QuantizeAndDequantizeV2/V3/V4 (docs/semantics.md §2.4)
// ---------------------------------------------------------------------------

enum class RoundMode : int { kHalfToEven = 0, kHalfUp = 1 };

// Calls fn(integral_constant<RoundMode>, integral_constant<bool clamp>) so
// per-element loops (CPU) and kernels (CUDA) are instantiated per variant,
// without branches inside them. Host code.
template <typename Fn>
inline void DispatchQdqVariant(RoundMode mode, bool clamp, Fn&& fn) {
  using HalfToEven = std::integral_constant<RoundMode, RoundMode::kHalfToEven>;
  using HalfUp = std::integral_constant<RoundMode, RoundMode::kHalfUp>;
  if (mode == RoundMode::kHalfToEven) {
    if (clamp) fn(HalfToEven{}, std::true_type{});
    else fn(HalfToEven{}, std::false_type{});
  } else {
    if (clamp) fn(HalfUp{}, std::true_type{});
    else fn(HalfUp{}, std::false_type{});
  }
}

// The integer grid [qmin, qmax] of a QDQ op.
struct QdqBounds {
  int64_t qmin;
  int64_t qmax;
};

QDQ_INLINE QdqBounds ComputeQdqBounds(bool signed_input, int num_bits,
                                      bool narrow_range) {
  if (signed_input) {
    const int64_t half_range = int64_t{1} << (num_bits - 1);
    return {narrow_range ? -half_range + 1 : -half_range, half_range - 1};
  }
  return {0, (int64_t{1} << num_bits) - 1};  // narrow_range is ignored
}

// Scale, inverse scale and the adjusted real range of one tensor or channel.
template <typename C>
struct QdqScale {
  C scale;
  C inverse_scale;  // range / bound, NOT 1/scale (docs/semantics.md §2.4)
  C min_range;      // adjusted range: only used for clamping when range_given
  C max_range;
};

// TF's ComputeQuantizationRange: the largest scale that keeps both ends of
// [min_range, max_range] on the grid, decided from one side; the other end is
// re-derived. Ties go to the max side.
template <typename C>
QDQ_INLINE QdqScale<C> ComputeQdqScale(QdqBounds bounds, C min_range,
                                       C max_range) {
  const C qmin = static_cast<C>(bounds.qmin);
  const C qmax = static_cast<C>(bounds.qmax);
  const C scale_from_min_side =
      (qmin * min_range > C(0)) ? qmin / min_range : LargestFinite<C>();
  const C scale_from_max_side =
      (qmax * max_range > C(0)) ? qmax / max_range : LargestFinite<C>();
  QdqScale<C> s;
  if (scale_from_min_side < scale_from_max_side) {
    s.scale = scale_from_min_side;
    s.inverse_scale = min_range / qmin;
    s.min_range = min_range;
    s.max_range = qmax * s.inverse_scale;
  } else {
    s.scale = scale_from_max_side;
    s.inverse_scale = max_range / qmax;
    s.min_range = qmin * s.inverse_scale;
    s.max_range = max_range;
  }
  return s;
}

// Round to the grid. HALF_TO_EVEN is rint (Eigen's HasRound specialisation);
// HALF_UP is floor(y + 0.5) with the sum rounded first (0.49999997f -> 1).
template <RoundMode kMode, typename C>
QDQ_INLINE C RoundToGrid(C y) {
  if (kMode == RoundMode::kHalfToEven) return std::rint(y);
  return std::floor(y + C(0.5));
}

// One element of QDQ. Clamping happens only when the range was given, and then
// to the ADJUSTED range.
template <RoundMode kMode, bool kClamp, typename C>
QDQ_INLINE C QuantizeDequantize(C x, const QdqScale<C>& s) {
  const C clamped =
      kClamp ? MaxPreferLeft(MinPreferLeft(x, s.max_range), s.min_range) : x;
  return RoundToGrid<kMode>(clamped * s.scale) * s.inverse_scale;
}

// One element of QuantizeAndDequantizeV4Grad (docs/semantics.md §3.4): the mask uses the
// raw input_min/input_max, and is a multiplication (inf * 0 = NaN).
template <typename C>
QDQ_INLINE C QdqGradient(C gradient, C x, C input_min, C input_max) {
  const C in_range = (x >= input_min && x <= input_max) ? C(1) : C(0);
  return FlushDenormal(gradient) * in_range;
}

// Running min/max over data, NaNs skipped (a NaN never compares less or
// greater). Equal values merge by their bits: min(-0, +0) is -0 and
// max(-0, +0) is +0 whatever the order, so any reduction order (thread count,
// CPU or GPU) gives the same bits. TF's Eigen reductions depend on the order
// in both respects: a NaN is skipped or poisons the range depending on where
// it sits, and which zero wins likewise (docs/semantics.md D12, D13).
template <typename C>
QDQ_INLINE C MergeEqualBits(C a, C b, bool keep_sign_if_any);
template <>
QDQ_INLINE float MergeEqualBits<float>(float a, float b, bool keep_sign_if_any) {
  const uint32_t ua = FloatBits(a), ub = FloatBits(b);
  return FloatFromBits(keep_sign_if_any ? (ua | ub) : (ua & ub));
}
template <>
QDQ_INLINE double MergeEqualBits<double>(double a, double b, bool keep_sign_if_any) {
  uint64_t ua, ub;
  memcpy(&ua, &a, sizeof(ua));
  memcpy(&ub, &b, sizeof(ub));
  const uint64_t r = keep_sign_if_any ? (ua | ub) : (ua & ub);
  double out;
  memcpy(&out, &r, sizeof(out));
  return out;
}
template <typename C>
QDQ_INLINE C RunningMin(C acc, C x) {
  return (x < acc) ? x : ((x == acc) ? MergeEqualBits(acc, x, true) : acc);
}
template <typename C>
QDQ_INLINE C RunningMax(C acc, C x) {
  return (acc < x) ? x : ((x == acc) ? MergeEqualBits(acc, x, false) : acc);
}

// ---------------------------------------------------------------------------
// FakeQuantWithMinMax{Args,Vars,VarsPerChannel} (docs/semantics.md §4, §5, §6)
// ---------------------------------------------------------------------------

// Integer grid of FakeQuant: [narrow ? 1 : 0, 2^num_bits - 1].
struct FakeQuantBounds {
  int quant_min;
  int quant_max;
};

QDQ_INLINE FakeQuantBounds ComputeFakeQuantBounds(int num_bits,
                                                  bool narrow_range) {
  return {narrow_range ? 1 : 0, (1 << num_bits) - 1};
}

// The nudged range of one tensor or channel, plus the per-range constants of
// the forward formula.
template <typename C>
struct FakeQuantNudged {
  C nudged_min;
  C nudged_max;
  C scale;
  C inverse_scale;  // (qmax - qmin) / (max - min), computed independently
  C quant_zero;     // floor(-nudged_min * inverse_scale + 0.5)
  bool zero_range;  // min == 0 && max == 0 (what the zero-range rule looks at)
};

// TF's Nudge (docs/semantics.md §4.3). The zero point rounds half away from zero (roundf).
template <typename C>
QDQ_INLINE FakeQuantNudged<C> NudgeFakeQuantRange(C min, C max,
                                                  FakeQuantBounds bounds) {
  const C quant_min_c = static_cast<C>(bounds.quant_min);
  const C quant_max_c = static_cast<C>(bounds.quant_max);
  FakeQuantNudged<C> n;
  n.zero_range = (min == C(0) && max == C(0));
  n.scale = (max - min) / (quant_max_c - quant_min_c);
  n.inverse_scale = (quant_max_c - quant_min_c) / (max - min);
  const C zero_point_from_min = quant_min_c - min / n.scale;
  uint16_t zero_point;
  if (zero_point_from_min < quant_min_c) {
    zero_point = static_cast<uint16_t>(bounds.quant_min);
  } else if (zero_point_from_min > quant_max_c) {
    zero_point = static_cast<uint16_t>(bounds.quant_max);
  } else if (zero_point_from_min != zero_point_from_min) {
    // NaN (a NaN or infinite min/max). TF casts NaN to uint16, which is
    // undefined; x86 produces 0, so do we. Every output is NaN anyway
    // except where an infinite bound makes the nudged range infinite.
    zero_point = 0;
  } else {
    zero_point = static_cast<uint16_t>(std::round(zero_point_from_min));
  }
  n.nudged_min = (quant_min_c - static_cast<C>(zero_point)) * n.scale;
  n.nudged_max = (quant_max_c - static_cast<C>(zero_point)) * n.scale;
  n.quant_zero = std::floor(-n.nudged_min * n.inverse_scale + C(0.5));
  return n;
}

// The step that maps a shifted value onto the grid. TF's
// FakeQuantWithMinMaxVars divides by the scale; Args and PerChannel multiply by
// the independently computed inverse (docs/semantics.md §4.4): the two differ in the last
// bit in about 1.6% of elements.
enum class GridStep : int { kDivideByScale = 0, kMultiplyByInverse = 1 };

template <GridStep kStep, typename C>
QDQ_INLINE C FakeQuantize(C x, const FakeQuantNudged<C>& n) {
  const C clamped =
      MaxPreferLeft(MinPreferLeft(x, n.nudged_max), n.nudged_min);
  const C shifted = clamped - n.nudged_min;
  const C on_grid = (kStep == GridStep::kDivideByScale)
                        ? shifted / n.scale
                        : shifted * n.inverse_scale;
  return std::floor((on_grid - n.quant_zero) + C(0.5)) * n.scale;
}

// Where an element sends its gradient (docs/semantics.md §5.3): to the input when inside
// the NUDGED range (inclusive), else to min (below) or max (above). NaN inputs
// go nowhere. Masks are multiplications, so a non-finite gradient gives NaN.
template <typename C>
struct FakeQuantGradientParts {
  C wrt_input;
  C wrt_min;
  C wrt_max;
};

template <typename C>
QDQ_INLINE FakeQuantGradientParts<C> FakeQuantElementGradient(
    C gradient, C x, const FakeQuantNudged<C>& n) {
  const C between = (x >= n.nudged_min && x <= n.nudged_max) ? C(1) : C(0);
  const C below = (x < n.nudged_min) ? C(1) : C(0);
  const C above = (x > n.nudged_max) ? C(1) : C(0);
  const C g = FlushDenormal(gradient);
  return {g * between, g * below, g * above};
}

// Where a FakeQuant op's min/max come from: `depth` values of tensors in T
// (Vars, PerChannel; device memory on a GPU), or one pair of float attrs
// (Args, used when the pointers are null).
template <typename T>
struct RangeSource {
  const T* min;
  const T* max;
  ComputeType<T> attr_min;
  ComputeType<T> attr_max;

  QDQ_INLINE ComputeType<T> Min(int64_t c) const {
    return min ? ToCompute(min[c]) : attr_min;
  }
  QDQ_INLINE ComputeType<T> Max(int64_t c) const {
    return max ? ToCompute(max[c]) : attr_max;
  }
};

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_QUANTIZE_MATH_H_
