// Numeric building blocks shared by every tf-qdq kernel: host and device.
//
// This header is framework-free (no TensorFlow, no Eigen) so that the same code
// compiles into the TF op library (g++ for CPU, clang for CUDA), the pybind11
// core module, and standalone nvcc builds on a GPU machine.
//
// 16-bit floats are stored as raw bits (`Half`, `BFloat16`) and computed in
// float32. The conversions are written with integer operations only, so they
// give the same bits on every compiler, device and floating-point environment
// (flush-to-zero or not).
#ifndef TF_QDQ_CC_CORE_NUMERIC_H_
#define TF_QDQ_CC_CORE_NUMERIC_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define QDQ_INLINE __host__ __device__ __forceinline__
#else
#define QDQ_INLINE inline __attribute__((always_inline))
#endif

namespace tf_qdq {
namespace core {

// IEEE binary16, stored as bits. Layout-compatible with Eigen::half.
struct Half {
  uint16_t bits;
};
// bfloat16, stored as bits. Layout-compatible with Eigen::bfloat16.
struct BFloat16 {
  uint16_t bits;
};

QDQ_INLINE uint32_t FloatBits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}
QDQ_INLINE float FloatFromBits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

// binary16 -> float32, exact.
QDQ_INLINE float HalfToFloat(Half h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  uint32_t exponent = (h.bits >> 10) & 0x1fu;
  uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0x1fu) {  // inf / NaN; a NaN comes out quiet, as with F16C
    return FloatFromBits(sign | 0x7f800000u | (mantissa << 13) |
                         (mantissa != 0 ? 0x400000u : 0u));
  }
  if (exponent == 0) {
    if (mantissa == 0) return FloatFromBits(sign);  // +-0
    // Subnormal half: normalise into a float32 normal number.
    exponent = 113;  // 127 - 15 + 1
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3ffu;
    return FloatFromBits(sign | (exponent << 23) | (mantissa << 13));
  }
  return FloatFromBits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// float32 -> binary16, round to nearest even (what Eigen::half and F16C do).
// A NaN keeps its sign and the top 10 bits of its payload and comes out quiet,
// as F16C's vcvtps2ph (and so TF's cast) makes it: the scalar tails of the
// F16C block loops then give the bits of their vector bodies.
QDQ_INLINE Half FloatToHalf(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a >= 0x47800000u) {  // |f| >= 65536: inf, NaN or overflow
    if (a > 0x7f800000u) {  // NaN
      return Half{static_cast<uint16_t>(sign | 0x7e00u | ((a & 0x7fffffu) >> 13))};
    }
    return Half{static_cast<uint16_t>(sign | 0x7c00u)};
  }
  if (a < 0x38800000u) {  // |f| < 2^-14: half subnormal or zero
    if (a < 0x33000000u) return Half{sign};  // < 2^-25 (the tie rounds to even 0)
    const uint32_t exponent = a >> 23;
    const uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // 14..24: units of 2^-24
    uint32_t q = mantissa >> shift;
    const uint32_t rem = mantissa & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return Half{static_cast<uint16_t>(sign | q)};
  }
  // Normal: rebias the exponent and round the 13 dropped bits to nearest even.
  // A carry out of the mantissa correctly bumps the exponent (65520 -> inf).
  const uint32_t rounded = a - (112u << 23) + 0xfffu + ((a >> 13) & 1u);
  return Half{static_cast<uint16_t>(sign | (rounded >> 13))};
}

QDQ_INLINE float BFloat16ToFloat(BFloat16 b) {
  return FloatFromBits(static_cast<uint32_t>(b.bits) << 16);
}

// float32 -> bfloat16, round to nearest even (what Eigen::bfloat16 does).
QDQ_INLINE BFloat16 FloatToBFloat16(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return BFloat16{static_cast<uint16_t>((u & 0x80000000u) ? 0xffc0u : 0x7fc0u)};
  }
  return BFloat16{static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

// double -> float rounded to odd: truncate, and set the last bit if anything
// was dropped. Rounding that float once more to a format with at least two
// fewer significand bits (half, bfloat16) equals rounding the double directly,
// so sums accumulated in double reach 16-bit types with a single rounding.
QDQ_INLINE float DoubleToFloatRoundToOdd(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) == d || d != d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) {  // rounded away: step back
    uint32_t u = FloatBits(f) - 1u;
    return FloatFromBits(u | 1u);
  }
  return FloatFromBits(FloatBits(f) | 1u);
}

// Storage type -> the type every formula is evaluated in.
template <typename T>
struct ComputeTypeOf {
  using type = T;
};
template <>
struct ComputeTypeOf<Half> {
  using type = float;
};
template <>
struct ComputeTypeOf<BFloat16> {
  using type = float;
};
template <typename T>
using ComputeType = typename ComputeTypeOf<T>::type;

QDQ_INLINE float ToCompute(Half v) { return HalfToFloat(v); }
QDQ_INLINE float ToCompute(BFloat16 v) { return BFloat16ToFloat(v); }
QDQ_INLINE float ToCompute(float v) { return v; }
QDQ_INLINE double ToCompute(double v) { return v; }

// Compute type -> storage type: the one rounding step for 16-bit types.
template <typename T>
struct FromCompute;
template <>
struct FromCompute<float> {
  QDQ_INLINE static float Convert(float v) { return v; }
  QDQ_INLINE static float FromDouble(double v) { return static_cast<float>(v); }
};
template <>
struct FromCompute<double> {
  QDQ_INLINE static double Convert(double v) { return v; }
  QDQ_INLINE static double FromDouble(double v) { return v; }
};
template <>
struct FromCompute<Half> {
  QDQ_INLINE static Half Convert(float v) { return FloatToHalf(v); }
  QDQ_INLINE static Half FromDouble(double v) {
    return FloatToHalf(DoubleToFloatRoundToOdd(v));
  }
};
template <>
struct FromCompute<BFloat16> {
  QDQ_INLINE static BFloat16 Convert(float v) { return FloatToBFloat16(v); }
  QDQ_INLINE static BFloat16 FromDouble(double v) {
    return FloatToBFloat16(DoubleToFloatRoundToOdd(v));
  }
};

template <typename T, typename C>
QDQ_INLINE T StoreAs(C v) {
  return FromCompute<T>::Convert(v);
}
template <typename T>
QDQ_INLINE T StoreDoubleAs(double v) {
  return FromCompute<T>::FromDouble(v);
}

// numeric_limits<C>::max(), usable in device code.
template <typename C>
QDQ_INLINE C LargestFinite();
template <>
QDQ_INLINE float LargestFinite<float>() { return 3.40282346638528859812e+38f; }
template <>
QDQ_INLINE double LargestFinite<double>() { return 1.79769313486231570815e+308; }

// +infinity, usable in device code (numeric_limits is host-only under nvcc).
template <typename C>
QDQ_INLINE C Infinity();
template <>
QDQ_INLINE float Infinity<float>() { return FloatFromBits(0x7f800000u); }
template <>
QDQ_INLINE double Infinity<double>() {
  const uint64_t bits = 0x7ff0000000000000ull;
  double d;
  memcpy(&d, &bits, sizeof(d));
  return d;
}

// A denormal becomes a zero of the same sign, as TF's CPU kernels see it
// (denormals-are-zero). The CPU loops also run with FTZ/DAZ set, but a product
// like `g * (inside ? 1 : 0)` may be folded by the compiler into a select that
// never multiplies, so the gradient formulas flush explicitly.
template <typename C>
QDQ_INLINE C FlushDenormal(C x);
template <>
QDQ_INLINE float FlushDenormal<float>(float x) {
  return (std::fabs(x) < 1.17549435e-38f) ? (x * 0.0f) : x;
}
template <>
QDQ_INLINE double FlushDenormal<double>(double x) {
  return (std::fabs(x) < 2.2250738585072014e-308) ? (x * 0.0) : x;
}

// Clamps that return the LEFT operand on ties and when either side is NaN,
// exactly like Eigen's cwiseMin/cwiseMax (std::min/std::max semantics). TF's
// bit patterns for NaN and -0.0 inputs depend on this.
template <typename C>
QDQ_INLINE C MinPreferLeft(C a, C b) {
  return (b < a) ? b : a;
}
template <typename C>
QDQ_INLINE C MaxPreferLeft(C a, C b) {
  return (a < b) ? b : a;
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_NUMERIC_H_
