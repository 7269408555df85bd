// Block conversion between storage and compute types for the CPU loops.
//
// float/double blocks are used in place (no copy). half and bfloat16 blocks
// are converted to float in a caller-provided buffer of kBlock elements, the
// loop runs on floats, and the result is rounded back once. Half uses F16C
// (vcvtph2ps/vcvtps2ph, round to nearest even: the same bits as FloatToHalf)
// when the CPU has it, checked at run time: TF 2.21 itself only requires AVX.
#ifndef TF_QDQ_CC_CORE_CONVERT_BLOCK_H_
#define TF_QDQ_CC_CORE_CONVERT_BLOCK_H_

#include <cstdint>

#include "cc/core/numeric.h"

// x86 host code only: never in a CUDA device pass (__CUDA_ARCH__), where
// these builtins do not exist.
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__CUDA_ARCH__)
#include <immintrin.h>
#define TF_QDQ_X86_HOST 1
#endif
#if defined(TF_QDQ_X86_HOST) && defined(__x86_64__) && defined(__GNUC__)
#define TF_QDQ_HAVE_F16C_PATH 1
#endif

namespace tf_qdq {
namespace core {

constexpr int64_t kBlock = 1024;

// TF runs its CPU kernels with denormals flushed: FTZ (denormal results become
// zero) and DAZ (denormal inputs read as zero), e.g. 1e-45f * 1.0f == 0. Every
// CPU loop of ours runs inside this scope so that it gives TF's bits; the CUDA
// build flushes float denormals too (see build_defs/cuda.bzl).
class ScopedFlushDenormals {
 public:
#ifdef TF_QDQ_X86_HOST
  ScopedFlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
  ~ScopedFlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits 15 (FTZ) and 6 (DAZ)
  unsigned saved_;
#else
  ScopedFlushDenormals() {}
#endif
  ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
  ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;
};

#ifdef TF_QDQ_HAVE_F16C_PATH
__attribute__((target("avx,f16c"))) inline void HalfToFloatF16C(const Half* in, float* out,
                                                                int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

__attribute__((target("avx,f16c"))) inline void FloatToHalfF16C(const float* in, Half* out,
                                                                int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h =
        _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

inline bool CpuHasF16C() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  }();
  return has;
}
#endif

inline void ConvertBlock(const Half* in, float* out, int64_t n) {
#ifdef TF_QDQ_HAVE_F16C_PATH
  if (CpuHasF16C()) return HalfToFloatF16C(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

inline void ConvertBlock(const float* in, Half* out, int64_t n) {
#ifdef TF_QDQ_HAVE_F16C_PATH
  if (CpuHasF16C()) return FloatToHalfF16C(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

// bfloat16 is integer arithmetic. Under AVX (TF's baseline) GCC has only
// 128-bit integer vectors for it; with AVX2, checked at run time, these
// 256-bit versions give the same bits as BFloat16ToFloat/FloatToBFloat16.
#ifdef TF_QDQ_HAVE_F16C_PATH
__attribute__((target("avx2"))) inline void BFloat16ToFloatAvx2(const BFloat16* in,
                                                                float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    const __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16);
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(u));
  }
  for (; i < n; ++i) out[i] = BFloat16ToFloat(in[i]);
}

__attribute__((target("avx2"))) inline void FloatToBFloat16Avx2(const float* in,
                                                                BFloat16* out, int64_t n) {
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  const __m256i sign16 = _mm256_set1_epi32(0x8000), quiet = _mm256_set1_epi32(0x7fc0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(in + i));
    const __m256i high = _mm256_srli_epi32(u, 16);
    // Round to nearest even: u + 0x7fff + (bit 16 of u), keep the top half.
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(high, one)), 16);
    // NaN: the quiet NaN with the input's sign.
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i nan = _mm256_or_si256(_mm256_and_si256(high, sign16), quiet);
    const __m256i r = _mm256_blendv_epi8(rounded, nan, is_nan);
    // Pack the eight 16-bit results (values <= 0xffff, so no saturation).
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) out[i] = FloatToBFloat16(in[i]);
}

inline bool CpuHasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
  }();
  return has;
}
#endif

inline void ConvertBlock(const BFloat16* in, float* out, int64_t n) {
#ifdef TF_QDQ_HAVE_F16C_PATH
  if (CpuHasAvx2()) return BFloat16ToFloatAvx2(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = BFloat16ToFloat(in[i]);
}

inline void ConvertBlock(const float* in, BFloat16* out, int64_t n) {
#ifdef TF_QDQ_HAVE_F16C_PATH
  if (CpuHasAvx2()) return FloatToBFloat16Avx2(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = FloatToBFloat16(in[i]);
}

// Compute-type view of `n` stored values: the values themselves when no
// conversion is needed, else `buffer` filled with the converted block.
template <typename C>
inline const C* LoadBlock(const C* in, int64_t, C*) {
  return in;
}
template <typename T, typename C>
inline const C* LoadBlock(const T* in, int64_t n, C* buffer) {
  ConvertBlock(in, buffer, n);
  return buffer;
}

// Where the loop writes its compute-type results, and how they get stored.
template <typename C>
inline C* OutputBlock(C* out, C*) {
  return out;
}
template <typename T, typename C>
inline C* OutputBlock(T*, C* buffer) {
  return buffer;
}

template <typename C>
inline void StoreBlock(const C*, int64_t, C*) {}
template <typename C, typename T>
inline void StoreBlock(const C* values, int64_t n, T* out) {
  ConvertBlock(values, out, n);
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CONVERT_BLOCK_H_
