// cc/core/quantize_math.h, moving_average.h and activation.h (and numeric.h's
// conversions) against hand-computed cases: the worked examples of
// docs/semantics.md, with every expected value derived step by step outside
// this code (float32 or exact arithmetic).
#include "cc/core/quantize_math.h"

#include <cmath>
#include <limits>

#include "cc/core/activation.h"
#include "cc/core/moving_average.h"
#include "cc/core/numeric.h"
#include "cc/tests/test_util.h"

namespace tf_qdq {
namespace core {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// ---- QDQ: integer bounds (docs/semantics.md §2.4) -------------------------------

TEST(QdqBounds) {
  QdqBounds b = ComputeQdqBounds(/*signed_input=*/true, 8, /*narrow_range=*/false);
  EXPECT_EQ(b.qmin, -128);
  EXPECT_EQ(b.qmax, 127);
  b = ComputeQdqBounds(true, 8, true);
  EXPECT_EQ(b.qmin, -127);
  EXPECT_EQ(b.qmax, 127);
  b = ComputeQdqBounds(false, 8, true);  // narrow_range is ignored when unsigned
  EXPECT_EQ(b.qmin, 0);
  EXPECT_EQ(b.qmax, 255);
  b = ComputeQdqBounds(true, 1, false);
  EXPECT_EQ(b.qmin, -1);
  EXPECT_EQ(b.qmax, 0);
  b = ComputeQdqBounds(true, 61, false);  // the largest signed num_bits
  EXPECT_TRUE(b.qmax == (int64_t{1} << 60) - 1 && b.qmin == -(int64_t{1} << 60));
  b = ComputeQdqBounds(false, 62, false);  // the largest unsigned num_bits
  EXPECT_TRUE(b.qmin == 0 && b.qmax == (int64_t{1} << 62) - 1);
}

// ---- QDQ: the scale, decided from one side ------------------------------------------

TEST(QdqScaleUnitRange) {
  // Given [-128, 127], signed 8 bits: both sides give 1, the tie goes to max.
  const QdqScale<float> s = ComputeQdqScale(ComputeQdqBounds(true, 8, false), -128.f, 127.f);
  EXPECT_SAME_BITS(s.scale, 1.0f);
  EXPECT_SAME_BITS(s.inverse_scale, 1.0f);
  EXPECT_SAME_BITS(s.min_range, -128.0f);
  EXPECT_SAME_BITS(s.max_range, 127.0f);
}

TEST(QdqScaleMaxSideWinsAndMinIsRederived) {
  // Given [0.5, 2.0]: qmin * 0.5 < 0, so the min side is out (largest float);
  // scale = 127 / 2 = 63.5, inverse = 2 / 127, min = -128 * (2 / 127).
  const QdqScale<float> s = ComputeQdqScale(ComputeQdqBounds(true, 8, false), 0.5f, 2.0f);
  EXPECT_SAME_BITS(s.scale, 63.5f);
  EXPECT_SAME_BITS(s.inverse_scale, 2.0f / 127.0f);
  EXPECT_SAME_BITS(s.min_range, -128.0f * (2.0f / 127.0f));
  EXPECT_SAME_BITS(s.max_range, 2.0f);
}

TEST(QdqScaleMinSideWins) {
  // Given [-1, 0.5], signed 8 bits: min side 128, max side 254: the min side is
  // smaller and wins: inverse = -1 / -128 (exact), max = 127 / 128 (exact).
  const QdqScale<float> s = ComputeQdqScale(ComputeQdqBounds(true, 8, false), -1.0f, 0.5f);
  EXPECT_SAME_BITS(s.scale, 128.0f);
  EXPECT_SAME_BITS(s.inverse_scale, 0.0078125f);
  EXPECT_SAME_BITS(s.min_range, -1.0f);
  EXPECT_SAME_BITS(s.max_range, 0.9921875f);
}

TEST(QdqScaleDegenerateRanges) {
  const QdqBounds b8 = ComputeQdqBounds(true, 8, false);
  // min = max = 0: both sides are the largest float, inverse 0 / 127 = 0.
  QdqScale<float> s = ComputeQdqScale(b8, 0.0f, 0.0f);
  EXPECT_SAME_BITS(s.scale, std::numeric_limits<float>::max());
  EXPECT_SAME_BITS(s.inverse_scale, 0.0f);
  // Given, it clamps to [0, 0] first: every output 0 (unclamped, 3 * max is inf).
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(3.0f, s)), 0.0f);
  // An infinite max: scale 127 / inf = 0, inverse inf: 0 * inf is NaN.
  s = ComputeQdqScale(b8, -1.0f, kInf);
  EXPECT_SAME_BITS(s.scale, 0.0f);
  EXPECT_TRUE(std::isnan((QuantizeDequantize<RoundMode::kHalfToEven, false>(0.25f, s))));
  // num_bits = 1, signed: qmax = 0, so positive data overflow to inf.
  s = ComputeQdqScale(ComputeQdqBounds(true, 1, false), -1.0f, 1.0f);
  EXPECT_SAME_BITS(s.scale, 1.0f);  // from the min side: -1 / -1
  EXPECT_SAME_BITS(s.max_range, 0.0f * 1.0f);
}

// ---- QDQ: rounding and the element formula --------------------------------------------

TEST(QdqRoundingTable) {
  // Scale exactly 1 (given [-128, 127]); the table of docs/semantics.md §2.4.
  const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49999997f, -0.49999997f,
                     126.5f, -127.5f};
  const float half_to_even[] = {0.f, 2.f, 2.f, -0.f, -2.f, -2.f, 0.f, -0.f, 126.f, -128.f};
  const float half_up[] = {1.f, 2.f, 3.f, 0.f, -1.f, -2.f, 1.f, 0.f, 127.f, -127.f};
  const QdqScale<float> s = ComputeQdqScale(ComputeQdqBounds(true, 8, false), -128.f, 127.f);
  for (int i = 0; i < 10; ++i) {
    const std::string at = "x=" + std::to_string(x[i]);
    EXPECT_SAME_BITS_AT((QuantizeDequantize<RoundMode::kHalfToEven, true>(x[i], s)),
                        half_to_even[i], at);
    EXPECT_SAME_BITS_AT((QuantizeDequantize<RoundMode::kHalfUp, true>(x[i], s)), half_up[i],
                        at);
  }
}

TEST(QdqClampsToTheAdjustedRangeOnlyWhenGiven) {
  // Given [0.5, 2.0]: x = [0, 0.3, 1, 2, 3] -> [0, 19/63.5, 64/63.5, 2, 2]: values
  // below the given min are not clamped to it (the adjusted min is -2.0157...).
  const QdqScale<float> s = ComputeQdqScale(ComputeQdqBounds(true, 8, false), 0.5f, 2.0f);
  const float inv = 2.0f / 127.0f;
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(0.0f, s)), 0.0f);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(0.3f, s)), 19.0f * inv);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(1.0f, s)), 64.0f * inv);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(3.0f, s)), 127.0f * inv);
  // Without a given range there is no clamp: 3 * 63.5 = 190.5 -> 190 (even).
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, false>(3.0f, s)), 190.0f * inv);
  // Given [-1, 1]: the adjusted min is -128/127; -1.005 clamps to it, not to -1.
  const QdqScale<float> t = ComputeQdqScale(ComputeQdqBounds(true, 8, false), -1.0f, 1.0f);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(-1.005f, t)),
                   -128.0f * (1.0f / 127.0f));
  // NaN passes the clamp (it prefers the left operand) and stays NaN.
  EXPECT_TRUE(std::isnan((QuantizeDequantize<RoundMode::kHalfUp, true>(kNaN, t))));
  // A -0 input stays -0 (the clamp keeps it, rint keeps the sign).
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(-0.0f, t)), -0.0f);
}

TEST(QdqUnsignedNoRange) {
  // Unsigned, range from data [-1, 10]: scale 25.5, inverse 10/255; negatives are
  // not clamped: -1 * 25.5 = -25.5 -> -26, 5 * 25.5 = 127.5 -> 128 (even).
  const QdqScale<float> s = ComputeQdqScale(ComputeQdqBounds(false, 8, false), -1.0f, 10.0f);
  EXPECT_SAME_BITS(s.scale, 25.5f);
  EXPECT_SAME_BITS(s.inverse_scale, 10.0f / 255.0f);
  EXPECT_SAME_BITS(s.min_range, 0.0f);  // 0 * inverse
  const float inv = 10.0f / 255.0f;
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, false>(-1.0f, s)), -26.0f * inv);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, false>(5.0f, s)), 128.0f * inv);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, false>(10.0f, s)), 255.0f * inv);
}

TEST(QdqDouble) {
  // A power-of-two range in double: [-2, 127/64] gives scale 64 from both sides
  // (the tie goes to max) and inverse 1/64: every output is k/64 exactly.
  const QdqScale<double> s = ComputeQdqScale(ComputeQdqBounds(true, 8, false), -2.0, 1.984375);
  EXPECT_SAME_BITS(s.scale, 64.0);
  EXPECT_SAME_BITS(s.inverse_scale, 0.015625);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfToEven, true>(0.1, s)), 6.0 / 64);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfUp, true>(-3.0, s)), -2.0);
  EXPECT_SAME_BITS((QuantizeDequantize<RoundMode::kHalfUp, true>(5.0, s)), 1.984375);
}

TEST(QdqGradientMask) {
  // Inclusive mask with the raw range, as a multiplication.
  EXPECT_SAME_BITS(QdqGradient(2.0f, -1.0f, -1.0f, 1.0f), 2.0f);
  EXPECT_SAME_BITS(QdqGradient(2.0f, 1.0f, -1.0f, 1.0f), 2.0f);
  EXPECT_SAME_BITS(QdqGradient(2.0f, 1.0000001f, -1.0f, 1.0f), 0.0f);
  EXPECT_SAME_BITS(QdqGradient(-2.0f, 3.0f, -1.0f, 1.0f), -0.0f);  // -2 * 0
  EXPECT_SAME_BITS(QdqGradient(2.0f, kNaN, -1.0f, 1.0f), 0.0f);     // NaN: mask 0
  EXPECT_TRUE(std::isnan(QdqGradient(kInf, 5.0f, -1.0f, 1.0f)));     // inf * 0
  EXPECT_SAME_BITS(QdqGradient(1e-40f, 0.0f, -1.0f, 1.0f), 0.0f);   // denormal flushed
  EXPECT_SAME_BITS(QdqGradient(-1e-310, 0.0, -1.0, 1.0), -0.0);
  // min > max: everything is masked out.
  EXPECT_SAME_BITS(QdqGradient(2.0f, 0.0f, 1.0f, -1.0f), 0.0f);
}

TEST(RunningMinMaxSkipsNaNAndMergesZeros) {
  EXPECT_SAME_BITS(RunningMin(1.0f, kNaN), 1.0f);
  EXPECT_SAME_BITS(RunningMax(1.0f, kNaN), 1.0f);
  EXPECT_SAME_BITS(RunningMin(1.0f, -2.0f), -2.0f);
  EXPECT_SAME_BITS(RunningMax(1.0f, 3.0f), 3.0f);
  // Zeros of both signs: the minimum is -0 and the maximum +0, in either order.
  EXPECT_SAME_BITS(RunningMin(0.0f, -0.0f), -0.0f);
  EXPECT_SAME_BITS(RunningMin(-0.0f, 0.0f), -0.0f);
  EXPECT_SAME_BITS(RunningMax(0.0f, -0.0f), 0.0f);
  EXPECT_SAME_BITS(RunningMax(-0.0f, 0.0f), 0.0f);
  EXPECT_SAME_BITS(RunningMax(-0.0, 0.0), 0.0);
  EXPECT_SAME_BITS(RunningMin(0.0, -0.0), -0.0);
}

// ---- FakeQuant: bounds and nudging (docs/semantics.md §4.3) -------------------------------

TEST(FakeQuantBoundsTable) {
  FakeQuantBounds b = ComputeFakeQuantBounds(8, false);
  EXPECT_EQ(b.quant_min, 0);
  EXPECT_EQ(b.quant_max, 255);
  b = ComputeFakeQuantBounds(8, true);
  EXPECT_EQ(b.quant_min, 1);
  b = ComputeFakeQuantBounds(16, false);
  EXPECT_EQ(b.quant_max, 65535);
  b = ComputeFakeQuantBounds(2, true);
  EXPECT_EQ(b.quant_max, 3);
}

TEST(NudgeMinusOneOne) {
  // [-1, 1] at 8 bits: the zero point from min is 127.49999 in float (not 127.5),
  // so it rounds to 127: nudged range [-127, 128] * (2/255).
  const FakeQuantNudged<float> n = NudgeFakeQuantRange(-1.0f, 1.0f, ComputeFakeQuantBounds(8, false));
  const float scale = 2.0f / 255.0f;
  EXPECT_SAME_BITS(n.scale, scale);
  EXPECT_SAME_BITS(n.inverse_scale, 127.5f);
  EXPECT_SAME_BITS(n.nudged_min, -127.0f * scale);
  EXPECT_SAME_BITS(n.nudged_max, 128.0f * scale);
  EXPECT_SAME_BITS(n.nudged_min, -0.9960785f);
  EXPECT_SAME_BITS(n.nudged_max, 1.0039216f);
  EXPECT_SAME_BITS(n.quant_zero, 127.0f);
  EXPECT_TRUE(!n.zero_range);
}

TEST(NudgeZeroPointRoundsHalfAwayFromZero) {
  // [-2.5, 252.5] at 8 bits: scale 1, zero point from min exactly 2.5 -> 3 (rint
  // would give 2): nudged [-3, 252].
  const FakeQuantNudged<float> n =
      NudgeFakeQuantRange(-2.5f, 252.5f, ComputeFakeQuantBounds(8, false));
  EXPECT_SAME_BITS(n.scale, 1.0f);
  EXPECT_SAME_BITS(n.nudged_min, -3.0f);
  EXPECT_SAME_BITS(n.nudged_max, 252.0f);
  EXPECT_SAME_BITS(n.quant_zero, 3.0f);
}

TEST(NudgeShiftsRangesThatExcludeZero) {
  // [12, 123]: the zero point clamps to quant_min = 0, so the range becomes
  // [0, 255 * scale] = [0, 111]; x = 123 gives 111.
  const FakeQuantBounds b = ComputeFakeQuantBounds(8, false);
  const FakeQuantNudged<float> n = NudgeFakeQuantRange(12.0f, 123.0f, b);
  EXPECT_SAME_BITS(n.nudged_min, 0.0f);
  EXPECT_SAME_BITS(n.nudged_max, 111.0f);
  EXPECT_SAME_BITS(FakeQuantize<GridStep::kMultiplyByInverse>(123.0f, n), 111.0f);
  // Entirely negative: the zero point clamps to quant_max.
  const FakeQuantNudged<float> m = NudgeFakeQuantRange(-123.0f, -12.0f, b);
  EXPECT_SAME_BITS(m.nudged_max, 0.0f);
  EXPECT_SAME_BITS(m.nudged_min, -111.0f);
}

TEST(NudgeSpecialRanges) {
  const FakeQuantBounds b = ComputeFakeQuantBounds(8, false);
  EXPECT_TRUE(NudgeFakeQuantRange(0.0f, 0.0f, b).zero_range);
  EXPECT_TRUE(NudgeFakeQuantRange(-0.0f, 0.0f, b).zero_range);
  // min == max != 0: scale 0, every output NaN.
  const FakeQuantNudged<float> z = NudgeFakeQuantRange(1.0f, 1.0f, b);
  EXPECT_SAME_BITS(z.scale, 0.0f);
  EXPECT_TRUE(std::isnan(FakeQuantize<GridStep::kDivideByScale>(0.5f, z)));
  // NaN range: the zero point is 0 (not a cast of NaN), outputs are NaN.
  const FakeQuantNudged<float> q = NudgeFakeQuantRange(kNaN, 1.0f, b);
  EXPECT_TRUE(std::isnan(FakeQuantize<GridStep::kMultiplyByInverse>(0.5f, q)));
  // An infinite bound: no crash, no UB (the zero point is a NaN there too).
  const FakeQuantNudged<double> inf = NudgeFakeQuantRange(-1.0, 1.0 / 0.0, b);
  EXPECT_TRUE(std::isnan(inf.scale) || std::isinf(inf.scale));
}

// ---- FakeQuant: the forward formula (docs/semantics.md §4.4) --------------------------------

TEST(FakeQuantVarsDividesArgsMultiplies) {
  // [-0.1, 0.9] at 8 bits: nudged [-0.098039225, 0.90196085], zero point 25.
  const FakeQuantNudged<float> n =
      NudgeFakeQuantRange(-0.1f, 0.9f, ComputeFakeQuantBounds(8, false));
  EXPECT_SAME_BITS(n.nudged_min, -0.098039225f);
  EXPECT_SAME_BITS(n.nudged_max, 0.90196085f);
  const float x[] = {-0.2f, -0.1f, 0.0f, 0.05f, 0.1f, 0.5f, 0.9f, 1.0f};
  const float vars[] = {-0.098039225f, -0.098039225f, 0.0f, 0.050980397f,
                        0.10196079f, 0.49803925f, 0.8980393f, 0.90196085f};
  // Multiplying by the inverse scale lands 0.5 and 0.9 on the next step.
  const float args[] = {-0.098039225f, -0.098039225f, 0.0f, 0.050980397f,
                        0.10196079f, 0.5019608f, 0.90196085f, 0.90196085f};
  for (int i = 0; i < 8; ++i) {
    const std::string at = "x=" + std::to_string(x[i]);
    EXPECT_SAME_BITS_AT(FakeQuantize<GridStep::kDivideByScale>(x[i], n), vars[i], at);
    EXPECT_SAME_BITS_AT(FakeQuantize<GridStep::kMultiplyByInverse>(x[i], n), args[i], at);
  }
  // inf clamps to the nudged max, NaN stays NaN, 0 is exactly 0.
  EXPECT_SAME_BITS(FakeQuantize<GridStep::kDivideByScale>(kInf, n), 0.90196085f);
  EXPECT_SAME_BITS(FakeQuantize<GridStep::kDivideByScale>(-kInf, n), -0.098039225f);
  EXPECT_TRUE(std::isnan(FakeQuantize<GridStep::kMultiplyByInverse>(kNaN, n)));
}

// ---- FakeQuant: the gradient (docs/semantics.md §5.3) -----------------------------------------

TEST(FakeQuantGradientRouting) {
  const FakeQuantNudged<float> n =
      NudgeFakeQuantRange(-0.1f, 0.9f, ComputeFakeQuantBounds(8, false));
  // x = -0.1 lies below the nudged min -0.098: its gradient goes to min.
  FakeQuantGradientParts<float> p = FakeQuantElementGradient(3.0f, -0.1f, n);
  EXPECT_SAME_BITS(p.wrt_input, 0.0f);
  EXPECT_SAME_BITS(p.wrt_min, 3.0f);
  EXPECT_SAME_BITS(p.wrt_max, 0.0f);
  // The nudged bounds themselves are inside (inclusive).
  p = FakeQuantElementGradient(3.0f, n.nudged_max, n);
  EXPECT_SAME_BITS(p.wrt_input, 3.0f);
  EXPECT_SAME_BITS(p.wrt_max, 0.0f);
  p = FakeQuantElementGradient(3.0f, 0.95f, n);
  EXPECT_SAME_BITS(p.wrt_max, 3.0f);
  // NaN input: nowhere.
  p = FakeQuantElementGradient(3.0f, kNaN, n);
  EXPECT_TRUE(p.wrt_input == 0 && p.wrt_min == 0 && p.wrt_max == 0);
  // A non-finite gradient poisons all three (inf * 0 = NaN).
  p = FakeQuantElementGradient(kInf, 0.5f, n);
  EXPECT_TRUE(std::isinf(p.wrt_input) && std::isnan(p.wrt_min) && std::isnan(p.wrt_max));
  // Denormal gradients are flushed to a zero of their sign.
  p = FakeQuantElementGradient(-1e-40f, 0.5f, n);
  EXPECT_SAME_BITS(p.wrt_input, -0.0f);
}

TEST(RangeSourceAttrsOrTensors) {
  const float mins[] = {-1.0f, -2.0f}, maxs[] = {1.0f, 2.0f};
  const RangeSource<float> tensors{mins, maxs, 0.0f, 0.0f};
  EXPECT_SAME_BITS(tensors.Min(1), -2.0f);
  EXPECT_SAME_BITS(tensors.Max(0), 1.0f);
  const RangeSource<float> attrs{nullptr, nullptr, -6.0f, 6.0f};
  EXPECT_SAME_BITS(attrs.Min(5), -6.0f);
  EXPECT_SAME_BITS(attrs.Max(5), 6.0f);
}

// ---- numeric.h: 16-bit conversions ------------------------------------------------------------

TEST(HalfConversions) {
  EXPECT_EQ(FloatToHalf(1.0f).bits, 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f).bits, 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f).bits, 0x7bff);         // the largest half
  EXPECT_EQ(FloatToHalf(65519.996f).bits, 0x7bff);       // just below the tie
  EXPECT_EQ(FloatToHalf(65520.0f).bits, 0x7c00);         // the tie rounds to inf
  EXPECT_EQ(FloatToHalf(5.9604645e-08f).bits, 0x0001);   // 2^-24, the smallest subnormal
  EXPECT_EQ(FloatToHalf(2.9802322e-08f).bits, 0x0000);   // 2^-25: tie to even 0
  EXPECT_EQ(FloatToHalf(-0.0f).bits, 0x8000);
  EXPECT_EQ(FloatToHalf(1.0009766f).bits, 0x3c01);       // 1 + 2^-10
  EXPECT_EQ(FloatToHalf(1.00048828125f).bits, 0x3c00);   // 1 + 2^-11: tie to even
  EXPECT_EQ(FloatToHalf(kNaN).bits, 0x7e00);
  // NaN payloads as F16C (and TF's cast): sign and top payload bits kept, quieted.
  EXPECT_EQ(FloatToHalf(FloatFromBits(0x7fa00001u)).bits, 0x7f00);
  EXPECT_EQ(FloatToHalf(FloatFromBits(0xffc12345u)).bits, 0xfe09);
  for (uint32_t b = 0x7c01; b < 0x8000; ++b) {  // every half NaN survives a round trip, quieted
    const uint16_t quiet = static_cast<uint16_t>(b | 0x200u);
    if (FloatToHalf(HalfToFloat(Half{static_cast<uint16_t>(b)})).bits != quiet) {
      EXPECT_EQ(FloatToHalf(HalfToFloat(Half{static_cast<uint16_t>(b)})).bits, quiet);
      break;
    }
  }
  EXPECT_SAME_BITS(HalfToFloat(Half{0x0001}), 5.9604645e-08f);
  EXPECT_SAME_BITS(HalfToFloat(Half{0x7bff}), 65504.0f);
  EXPECT_SAME_BITS(HalfToFloat(Half{0xfc00}), -kInf);
  EXPECT_TRUE(std::isnan(HalfToFloat(Half{0x7c01})));
  for (uint32_t b = 0; b < 0x10000; ++b) {  // every non-NaN half round-trips
    const Half h{static_cast<uint16_t>(b)};
    if ((b & 0x7c00) == 0x7c00 && (b & 0x3ff) != 0) continue;
    if (FloatToHalf(HalfToFloat(h)).bits != h.bits) {
      EXPECT_EQ(FloatToHalf(HalfToFloat(h)).bits, h.bits);
      break;
    }
  }
}

TEST(BFloat16Conversions) {
  EXPECT_EQ(FloatToBFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.00390625f).bits, 0x3f80);  // 1 + 2^-8: tie to even
  EXPECT_EQ(FloatToBFloat16(1.01171875f).bits, 0x3f82);  // 1 + 3*2^-8: tie to even (up)
  EXPECT_EQ(FloatToBFloat16(-kNaN).bits & 0x7fff, 0x7fc0);
  EXPECT_SAME_BITS(BFloat16ToFloat(BFloat16{0xc040}), -3.0f);
}

TEST(DoubleToFloatRoundToOdd) {
  // Exact values pass; inexact ones get the last bit set (then a second
  // rounding to 16 bits equals one rounding of the double).
  EXPECT_SAME_BITS(DoubleToFloatRoundToOdd(1.5), 1.5f);
  const float up = DoubleToFloatRoundToOdd(1.0 + 1e-12);
  EXPECT_EQ(FloatBits(up), FloatBits(1.0f) | 1u);
  // 1 + 2^-11 + tiny: nearest half is 1 + 2^-10 (above the tie); through a
  // round-to-nearest float it would be exactly the tie and round to even 1.0.
  const double d = 1.0 + 0.00048828125 + 1e-12;
  EXPECT_EQ(StoreDoubleAs<Half>(d).bits, 0x3c01);
}

TEST(ClampsPreferTheLeftOperand) {
  EXPECT_TRUE(std::isnan(MinPreferLeft(kNaN, 1.0f)));
  EXPECT_SAME_BITS(MinPreferLeft(1.0f, kNaN), 1.0f);
  EXPECT_SAME_BITS(MaxPreferLeft(-0.0f, 0.0f), -0.0f);
  EXPECT_SAME_BITS(MinPreferLeft(0.0f, -0.0f), 0.0f);
  EXPECT_SAME_BITS(FlushDenormal(1e-39f), 0.0f);
  EXPECT_SAME_BITS(FlushDenormal(-1e-39f), -0.0f);
  EXPECT_SAME_BITS(FlushDenormal(1.17549435e-38f), 1.17549435e-38f);
}

// ---- The moving-average range and the fused activations ------------------------

TEST(MovingAverageFirstBatchReplacesTheInitialRange) {
  const MovingAverageStep s = UpdateMovingAverage({-6.0f, 6.0f, 0.0f}, -0.5f, 2.0f, true, 0.99f,
                                                  /*symmetric=*/false);
  // weight = 1 * (1 - 0.99 * 0) = 1: the batch range, widened to hold 0.
  EXPECT_EQ(s.range.min, -0.5f);
  EXPECT_EQ(s.range.max, 2.0f);
  EXPECT_EQ(s.range.initialized, 1.0f);
  EXPECT_EQ(s.grid_min, -0.5f);
  EXPECT_EQ(s.grid_max, 2.0f);
}

TEST(MovingAverageAveragesOnceInitialized) {
  // momentum 0.5: weight 0.5; the batch [1, 3] is widened to [0, 3].
  const MovingAverageStep s = UpdateMovingAverage({-2.0f, 4.0f, 1.0f}, 1.0f, 3.0f, true, 0.5f,
                                                  false);
  EXPECT_EQ(s.range.min, -1.0f);  // -2 * 0.5 + 0 * 0.5
  EXPECT_EQ(s.range.max, 3.5f);   // 4 * 0.5 + 3 * 0.5
  EXPECT_EQ(s.range.initialized, 1.0f);
}

TEST(MovingAverageWithoutDataKeepsTheRange) {
  // No finite value: batch (+inf, -inf), widened to [0, 0], weight 0.
  const MovingAverageStep s = UpdateMovingAverage({-2.0f, 4.0f, 0.0f}, kInf, -kInf, false, 0.9f,
                                                  false);
  EXPECT_EQ(s.range.min, -2.0f);
  EXPECT_EQ(s.range.max, 4.0f);
  EXPECT_EQ(s.range.initialized, 0.0f);
}

TEST(MovingAverageSymmetricGrid) {
  const MovingAverageStep s = UpdateMovingAverage({0.0f, 0.0f, 0.0f}, -3.0f, 2.0f, true, 0.9f,
                                                  /*symmetric=*/true);
  EXPECT_EQ(s.grid_min, -3.0f);                   // a = max(3, 2)
  EXPECT_EQ(s.grid_max, 3.0f * 127.0f / 128.0f);  // exact in float32
}

TEST(FusedActivationsAsTfComputesThem) {
  EXPECT_EQ(Activate<Activation::kRelu6>(7.5f), 6.0f);
  EXPECT_EQ(Activate<Activation::kRelu6>(-2.0f), 0.0f);
  EXPECT_EQ(Activate<Activation::kRelu>(7.5f), 7.5f);
  EXPECT_TRUE(std::isnan(Activate<Activation::kRelu6>(kNaN)));
  EXPECT_TRUE(std::signbit(Activate<Activation::kRelu>(-0.0f)));  // the left operand on ties
  EXPECT_EQ(Activate<Activation::kRelu6>(kInf), 6.0f);
  EXPECT_EQ(ActivationSlope<Activation::kRelu6>(6.0f), 0.0f);  // strictly inside only
  EXPECT_EQ(ActivationSlope<Activation::kRelu6>(5.5f), 1.0f);
  EXPECT_EQ(ActivationSlope<Activation::kRelu>(0.0f), 0.0f);
  EXPECT_EQ(ActivationSlope<Activation::kRelu>(kNaN), 0.0f);
  EXPECT_EQ(ActivationSlope<Activation::kRelu>(kInf), 1.0f);
}

}  // namespace
}  // namespace core
}  // namespace tf_qdq

TEST_MAIN()
