// A minimal test harness for tf-qdq's C++ tests (no googletest: the build is
// offline and Bazel 4.2.3 cannot fetch it). TEST(name) registers a function;
// EXPECT_* record a failure with file:line and keep going; main() runs every
// test and exits 1 if any expectation failed. Comparisons of floating-point
// results are bit for bit (EXPECT_SAME_BITS), as the project's contract is.
#ifndef TF_QDQ_CC_TESTS_TEST_UTIL_H_
#define TF_QDQ_CC_TESTS_TEST_UTIL_H_

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cc/core/numeric.h"

namespace tf_qdq {
namespace testing {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}
inline int& Failures() {
  static int failures = 0;
  return failures;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { Registry().push_back({name, fn}); }
};

inline void Fail(const char* file, int line, const std::string& what) {
  ++Failures();
  if (Failures() <= 50) std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

// The bits of a value, for bit-exact comparisons (and printing).
inline uint64_t BitsOf(float v) { return core::FloatBits(v); }
inline uint64_t BitsOf(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof(u));
  return u;
}
inline uint64_t BitsOf(core::Half v) { return v.bits; }
inline uint64_t BitsOf(core::BFloat16 v) { return v.bits; }
inline double AsDouble(float v) { return v; }
inline double AsDouble(double v) { return v; }
inline double AsDouble(core::Half v) { return core::HalfToFloat(v); }
inline double AsDouble(core::BFloat16 v) { return core::BFloat16ToFloat(v); }

template <typename A, typename B>
inline void ExpectSameBits(const A& got, const B& want, const char* file, int line,
                           const char* expr, const std::string& where = "") {
  const A w = static_cast<A>(want);
  if (BitsOf(got) != BitsOf(w)) {
    char buf[256];
    std::snprintf(buf, sizeof(buf), "%s: got %.9g (0x%" PRIx64 "), want %.9g (0x%" PRIx64 ")",
                  expr, AsDouble(got), BitsOf(got), AsDouble(w), BitsOf(w));
    Fail(file, line, std::string(buf) + (where.empty() ? "" : " [" + where + "]"));
  }
}

inline int RunAll(const char* program) {
  for (const TestCase& t : Registry()) {
    const int before = Failures();
    t.fn();
    std::printf("[%s] %s\n", Failures() == before ? "  OK  " : "FAILED", t.name);
  }
  std::printf("%s: %zu tests, %d failed expectations\n", program, Registry().size(),
              Failures());
  return Failures() == 0 ? 0 : 1;
}

}  // namespace testing
}  // namespace tf_qdq

#define TEST(name)                                                          \
  static void Test_##name();                                                \
  static ::tf_qdq::testing::Register register_##name(#name, &Test_##name);  \
  static void Test_##name()

#define EXPECT_TRUE(cond) \
  ((cond) ? (void)0 : ::tf_qdq::testing::Fail(__FILE__, __LINE__, "expected " #cond))
#define EXPECT_EQ(a, b)                                                                 \
  (((a) == (b)) ? (void)0                                                               \
                : ::tf_qdq::testing::Fail(__FILE__, __LINE__,                           \
                                          #a " == " #b " (" + std::to_string(a) + " vs " + \
                                              std::to_string(b) + ")"))
#define EXPECT_SAME_BITS(got, want) \
  ::tf_qdq::testing::ExpectSameBits((got), (want), __FILE__, __LINE__, #got " vs " #want)
#define EXPECT_SAME_BITS_AT(got, want, where) \
  ::tf_qdq::testing::ExpectSameBits((got), (want), __FILE__, __LINE__, #got, (where))

#define TEST_MAIN() \
  int main(int, char** argv) { return ::tf_qdq::testing::RunAll(argv[0]); }

#endif  // TF_QDQ_CC_TESTS_TEST_UTIL_H_
