// The CPU loops of cc/core/cpu/*.h against a scalar reference, bit for
// bit, on random inputs with special values (NaN, inf, signed zeros,
// denormals, grid ties), for every op, dtype and kind of channel view, and
// under several ways of splitting the work (results must not depend on it).
//
// The reference applies quantize_math.h's per-element formulas one element at
// a time, finds each channel's range with a plain loop, and sums the FakeQuant
// range gradients in the canonical order that layout.h documents, written out
// directly (full-width lane trees, as the GPU folds them).
#include "cc/core/cpu/fake_quant.h"
#include "cc/core/cpu/fake_quant_gradient.h"
#include "cc/core/cpu/qdq.h"

#include <sys/mman.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"
#include "cc/tests/test_util.h"

namespace tf_qdq {
namespace core {
namespace {

// ---- ways to split the work ---------------------------------------------------------------

// kind 0: one call; 1: pieces of `piece` units; 2: random pieces.
struct SplitFor {
  int kind;
  int64_t piece;
  mutable std::mt19937_64 rng{7};
  template <typename Fn>
  void operator()(int64_t units, int64_t, Fn&& fn) const {
    ScopedFlushDenormals flush;
    if (units <= 0) return;
    if (kind == 0) return fn(int64_t{0}, units);
    for (int64_t b = 0; b < units;) {
      int64_t m = kind == 1 ? piece : 1 + static_cast<int64_t>(rng() % (2 * piece));
      if (m > units - b) m = units - b;
      fn(b, b + m);
      b += m;
    }
  }
};
const SplitFor kSplits[] = {{0, 0}, {1, 1}, {1, 1000}, {2, 3}, {2, 5000}};

// ---- random data ----------------------------------------------------------------------------

template <typename T>
T FromDouble(double v) {
  return StoreAs<T>(static_cast<ComputeType<T>>(v));
}

template <typename T>
std::vector<T> RandomData(int64_t n, std::mt19937_64& rng, double scale) {
  std::normal_distribution<double> normal(0.0, scale);
  const double specials[] = {0.0, -0.0, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), 1e-40, -1e-40,
                             1e-310, -1e-310, 0.5, -0.5, 2.5, 1e30, -1e30};
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng() % 1000;
    double x = normal(rng);
    if (r < 15) x = specials[r % 14];
    else if (r < 60) x = std::round(x * 8) / 8;  // on or between grid points
    v[i] = FromDouble<T>(x);
  }
  return v;
}

template <typename T>
std::string TypeName() {
  if (std::is_same<T, float>::value) return "float";
  if (std::is_same<T, double>::value) return "double";
  if (std::is_same<T, Half>::value) return "half";
  return "bfloat16";
}

std::string ViewName(const ChannelView& v) {
  return "[" + std::to_string(v.outer) + "," + std::to_string(v.depth) + "," +
         std::to_string(v.inner) + "]";
}

// Bit for bit. `any_nan`: a NaN matches any NaN (for the range-gradient sums,
// where NaN and NaN of the other sign can meet, and which one an addition keeps
// depends on the operand order; the element-wise outputs keep the exact bits).
template <typename T>
void ExpectSameArrays(const std::vector<T>& got, const std::vector<T>& want,
                      const std::string& where, bool any_nan = false) {
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (any_nan && std::isnan(testing::AsDouble(got[i])) &&
        std::isnan(testing::AsDouble(want[i]))) {
      continue;
    }
    if (testing::BitsOf(got[i]) != testing::BitsOf(want[i])) {
      EXPECT_SAME_BITS_AT(got[i], want[i], where + " at " + std::to_string(i));
      return;  // one report per array
    }
  }
}

std::vector<unsigned char> Buffer(size_t bytes) {
  return std::vector<unsigned char>(bytes > 0 ? bytes : 1);
}

template <typename T>
int64_t At(const ChannelView& v, int64_t o, int64_t c, int64_t k) {
  return (o * v.depth + c) * v.inner + k;
}

// ---- QDQ forward ----------------------------------------------------------------------------

template <typename T>
std::vector<T> RefQdqForward(const std::vector<T>& x, const ChannelView& v, QdqBounds bounds,
                             RoundMode mode, bool range_given, const std::vector<T>& lo,
                             const std::vector<T>& hi) {
  using C = ComputeType<T>;
  ScopedFlushDenormals flush;
  std::vector<T> y(x.size());
  for (int64_t c = 0; c < v.depth; ++c) {
    C mn, mx;
    if (range_given) {
      mn = ToCompute(lo[c]);
      mx = ToCompute(hi[c]);
    } else {
      mn = Infinity<C>();
      mx = -Infinity<C>();
      bool positive_zero = false;
      for (int64_t o = 0; o < v.outer; ++o) {
        for (int64_t k = 0; k < v.inner; ++k) {
          const C e = ToCompute(x[At<T>(v, o, c, k)]);
          if (e < mn) mn = e;
          if (mx < e) mx = e;
          if (e == 0 && !std::signbit(e)) positive_zero = true;
        }
      }
      if (mx == 0) mx = positive_zero ? C(0) : -C(0);  // a zero max: +0 if any +0
    }
    const QdqScale<C> s = ComputeQdqScale(bounds, mn, mx);
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t k = 0; k < v.inner; ++k) {
        const int64_t i = At<T>(v, o, c, k);
        const C e = ToCompute(x[i]);
        C r;
        if (mode == RoundMode::kHalfToEven) {
          r = range_given ? QuantizeDequantize<RoundMode::kHalfToEven, true>(e, s)
                          : QuantizeDequantize<RoundMode::kHalfToEven, false>(e, s);
        } else {
          r = range_given ? QuantizeDequantize<RoundMode::kHalfUp, true>(e, s)
                          : QuantizeDequantize<RoundMode::kHalfUp, false>(e, s);
        }
        y[i] = StoreAs<T>(r);
      }
    }
  }
  return y;
}

const ChannelView kQdqViews[] = {
    {1, 1, 0},   {1, 1, 1},  {1, 1, 17},  {1, 1, 1025}, {1, 1, 70001}, {2, 3, 5},
    {1, 7, 1},   {37, 16, 9}, {5, 3, 64}, {3, 2, 130},  {300, 5, 1},   {0, 3, 4},
    {4, 0, 3},   {6, 1, 7},   {2, 1100, 1}};

template <typename T>
void CheckQdqForward() {
  std::mt19937_64 rng(1);
  for (const ChannelView& v : kQdqViews) {
    for (bool range_given : {false, true}) {
      for (RoundMode mode : {RoundMode::kHalfToEven, RoundMode::kHalfUp}) {
        for (int variant = 0; variant < 3; ++variant) {
          const bool sign = variant != 2;
          const int bits = variant == 0 ? 8 : variant == 1 ? 4 : 3;
          const QdqBounds bounds = ComputeQdqBounds(sign, bits, variant == 1);
          const std::vector<T> x = RandomData<T>(v.size(), rng, 3.0);
          std::vector<T> lo(v.depth), hi(v.depth);
          for (int64_t c = 0; c < v.depth; ++c) {
            lo[c] = FromDouble<T>(-0.1 - static_cast<double>(rng() % 100) / 25);
            hi[c] = FromDouble<T>(0.1 + static_cast<double>(rng() % 100) / 25);
          }
          const std::vector<T> want = RefQdqForward(x, v, bounds, mode, range_given, lo, hi);
          for (const SplitFor& split : kSplits) {
            std::vector<T> y(x.size());
            QdqForwardArgs<T> a;
            a.input = x.data();
            a.output = y.data();
            a.view = v;
            a.bounds = bounds;
            a.round_mode = mode;
            a.range_given = range_given;
            a.input_min = lo.data();
            a.input_max = hi.data();
            a.check_range_order = false;
            const size_t bytes = QdqForwardWorkspaceBytes<T>(v, range_given);
            std::vector<unsigned char> buf = Buffer(bytes);
            Workspace ws(buf.data(), bytes);
            QdqForwardCpu(a, ws, split);
            ExpectSameArrays(y, want,
                             "QdqForwardCpu<" + TypeName<T>() + "> " + ViewName(v) +
                                 (range_given ? " given" : " from data") + " mode " +
                                 std::to_string(static_cast<int>(mode)) + " variant " +
                                 std::to_string(variant) + " split " +
                                 std::to_string(split.kind) + "/" +
                                 std::to_string(split.piece));
          }
        }
      }
    }
  }
}

TEST(QdqForwardFloat) { CheckQdqForward<float>(); }
TEST(QdqForwardDouble) { CheckQdqForward<double>(); }
TEST(QdqForwardHalf) { CheckQdqForward<Half>(); }
TEST(QdqForwardBFloat16) { CheckQdqForward<BFloat16>(); }

// ---- QDQ gradient ---------------------------------------------------------------------------

template <typename T>
void CheckQdqGradient() {
  std::mt19937_64 rng(2);
  for (const ChannelView& v : kQdqViews) {
    const std::vector<T> g = RandomData<T>(v.size(), rng, 1.0);
    const std::vector<T> x = RandomData<T>(v.size(), rng, 2.0);
    std::vector<T> lo(v.depth), hi(v.depth);
    for (int64_t c = 0; c < v.depth; ++c) {
      lo[c] = FromDouble<T>(-static_cast<double>(rng() % 100) / 30);
      hi[c] = FromDouble<T>(static_cast<double>(rng() % 100) / 30 - 0.5);  // sometimes < lo
    }
    std::vector<T> want(x.size());
    {
      ScopedFlushDenormals flush;
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t c = 0; c < v.depth; ++c)
          for (int64_t k = 0; k < v.inner; ++k) {
            const int64_t i = At<T>(v, o, c, k);
            want[i] = StoreAs<T>(QdqGradient(ToCompute(g[i]), ToCompute(x[i]),
                                             ToCompute(lo[c]), ToCompute(hi[c])));
          }
    }
    for (const SplitFor& split : kSplits) {
      std::vector<T> dx(x.size());
      std::vector<T> dmin(v.depth, FromDouble<T>(7.0)), dmax(v.depth, FromDouble<T>(7.0));
      QdqGradientArgs<T> a{g.data(), x.data(), dx.data(), v, lo.data(), hi.data(),
                           dmin.data(), dmax.data(), v.depth};
      const size_t bytes = QdqGradientWorkspaceBytes<T>(v);
      std::vector<unsigned char> buf = Buffer(bytes);
      Workspace ws(buf.data(), bytes);
      QdqGradientCpu(a, ws, split);
      const std::string where = "QdqGradientCpu<" + TypeName<T>() + "> " + ViewName(v);
      ExpectSameArrays(dx, want, where);
      ExpectSameArrays(dmin, std::vector<T>(v.depth, FromDouble<T>(0.0)), where + " dmin");
      ExpectSameArrays(dmax, std::vector<T>(v.depth, FromDouble<T>(0.0)), where + " dmax");
    }
  }
}

TEST(QdqGradientFloat) { CheckQdqGradient<float>(); }
TEST(QdqGradientDouble) { CheckQdqGradient<double>(); }
TEST(QdqGradientHalf) { CheckQdqGradient<Half>(); }
TEST(QdqGradientBFloat16) { CheckQdqGradient<BFloat16>(); }

// ---- FakeQuant ------------------------------------------------------------------------------

// Per tensor ({1, 1, n}: Args, Vars) or [rows, depth, 1] (PerChannel).
const ChannelView kFakeQuantViews[] = {
    {1, 1, 0},  {1, 1, 1},   {1, 1, 33},   {1, 1, 4096}, {1, 1, 4097}, {1, 1, 70001},
    {1, 9, 1},  {257, 3, 1}, {600, 300, 1}, {0, 4, 1},   {5, 1, 1},    {1030, 1, 1},
    {3, 257, 1}};

template <typename T>
std::vector<T> RangeValues(int64_t depth, std::mt19937_64& rng, bool lower) {
  std::vector<T> r(depth);
  for (int64_t c = 0; c < depth; ++c) {
    const double u = static_cast<double>(rng() % 1000) / 250;
    r[c] = FromDouble<T>(lower ? -u : u + 0.01);
  }
  if (depth > 1) r[0] = FromDouble<T>(0.0);  // with the other bound 0 too below
  return r;
}

// The canonical order of layout.h, written out: per tensor, 4096-element chunks
// of 64 lanes folded as a tree; per channel, 256-row chunks added in order; then
// the chunk sums in 256 lanes, folded as a tree.
double RefFold(std::vector<double> lanes) {
  for (size_t s = lanes.size() / 2; s > 0; s /= 2)
    for (size_t j = 0; j < s; ++j) lanes[j] += lanes[j + s];
  return lanes[0];
}
double RefCombine(const std::vector<double>& partials) {
  std::vector<double> lanes(256, 0.0);
  for (size_t i = 0; i < partials.size(); ++i) lanes[i % 256] += partials[i];
  return partials.empty() ? 0.0 : RefFold(lanes);
}

template <typename T>
struct FakeQuantRef {
  std::vector<T> y, dx, dmin, dmax;
};

template <GridStep kStep, typename T>
FakeQuantRef<T> RefFakeQuant(const std::vector<T>& g, const std::vector<T>& x,
                             const ChannelView& v, FakeQuantBounds bounds,
                             const RangeSource<T>& range, bool zero_range_rule, bool sums) {
  using C = ComputeType<T>;
  ScopedFlushDenormals flush;
  FakeQuantRef<T> r;
  r.y.resize(x.size());
  r.dx.resize(x.size());
  const bool flat = v.depth == 1 && v.outer == 1;
  std::vector<std::vector<double>> pmin(v.depth), pmax(v.depth);
  for (int64_t c = 0; c < v.depth; ++c) {
    const FakeQuantNudged<C> n = NudgeFakeQuantRange(range.Min(c), range.Max(c), bounds);
    const bool pass = zero_range_rule && n.zero_range;
    std::vector<double> lmin(64, 0.0), lmax(64, 0.0);
    double rmin = 0.0, rmax = 0.0;
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t k = 0; k < v.inner; ++k) {
        const int64_t i = At<T>(v, o, c, k);
        const C e = ToCompute(x[i]), ge = ToCompute(g[i]);
        r.y[i] = StoreAs<T>(pass ? C(0) : FakeQuantize<kStep>(e, n));
        const FakeQuantGradientParts<C> p = FakeQuantElementGradient(ge, e, n);
        r.dx[i] = pass ? g[i] : StoreAs<T>(p.wrt_input);
        const double to_min = pass ? 0.0 : static_cast<double>(p.wrt_min);
        const double to_max = pass ? 0.0 : static_cast<double>(p.wrt_max);
        if (flat) {
          lmin[k % 64] += to_min;
          lmax[k % 64] += to_max;
          if (k % 4096 == 4095 || k == v.inner - 1) {
            pmin[c].push_back(RefFold(lmin));
            pmax[c].push_back(RefFold(lmax));
            lmin.assign(64, 0.0);
            lmax.assign(64, 0.0);
          }
        } else {
          rmin += to_min;
          rmax += to_max;
          if (o % 256 == 255 || o == v.outer - 1) {
            pmin[c].push_back(rmin);
            pmax[c].push_back(rmax);
            rmin = rmax = 0.0;
          }
        }
      }
    }
  }
  if (sums) {
    for (int64_t c = 0; c < v.depth; ++c) {
      r.dmin.push_back(StoreDoubleAs<T>(RefCombine(pmin[c])));
      r.dmax.push_back(StoreDoubleAs<T>(RefCombine(pmax[c])));
    }
  }
  return r;
}

// zero_channel: channel 0 of a per-channel range is min == max == 0 (else no
// channel is, which the float loops take as a separate path).
template <GridStep kStep, typename T>
void CheckFakeQuantOne(const ChannelView& v, std::mt19937_64& rng, bool attrs, int bits,
                       bool narrow, bool zero_channel = true) {
  const std::vector<T> x = RandomData<T>(v.size(), rng, 2.0);
  const std::vector<T> g = RandomData<T>(v.size(), rng, 1.0);
  std::vector<T> lo = RangeValues<T>(v.depth, rng, true), hi = RangeValues<T>(v.depth, rng, false);
  if (v.depth > 1 && zero_channel) hi[0] = FromDouble<T>(0.0);  // a min == max == 0 channel
  using C = ComputeType<T>;
  const RangeSource<T> range =
      attrs ? RangeSource<T>{nullptr, nullptr, C(-0.75), C(1.25)}
            : RangeSource<T>{lo.data(), hi.data(), C(0), C(0)};
  const FakeQuantBounds bounds = ComputeFakeQuantBounds(bits, narrow);
  const bool zero_range_rule = !attrs;
  const FakeQuantRef<T> want = RefFakeQuant<kStep>(g, x, v, bounds, range, zero_range_rule, !attrs);
  const std::string where = std::string(attrs ? "Args" : "Vars/PerChannel") + "<" +
                            TypeName<T>() + "> " + ViewName(v) + " bits " +
                            std::to_string(bits) + " step " +
                            std::to_string(static_cast<int>(kStep));
  for (const SplitFor& split : kSplits) {
    const std::string at = where + " split " + std::to_string(split.kind) + "/" +
                           std::to_string(split.piece);
    std::vector<T> y(x.size());
    FakeQuantArgs<T> fa{x.data(), y.data(), v, bounds, range, zero_range_rule};
    size_t bytes = FakeQuantWorkspaceBytes<T>(v);
    std::vector<unsigned char> buf = Buffer(bytes);
    Workspace ws(buf.data(), bytes);
    FakeQuantForwardCpu<kStep>(fa, ws, split);
    ExpectSameArrays(y, want.y, "FakeQuantForwardCpu " + at);

    std::vector<T> dx(x.size()), dmin(v.depth), dmax(v.depth);
    FakeQuantGradientArgs<T> ga{g.data(), x.data(), dx.data(),
                                attrs ? nullptr : dmin.data(), attrs ? nullptr : dmax.data(),
                                v, bounds, range, zero_range_rule};
    bytes = FakeQuantGradientWorkspaceBytes<T>(v, !attrs);
    std::vector<unsigned char> gbuf = Buffer(bytes);
    Workspace gws(gbuf.data(), bytes);
    FakeQuantGradientCpu(ga, gws, split);
    ExpectSameArrays(dx, want.dx, "FakeQuantGradientCpu dx " + at);
    if (!attrs) {
      ExpectSameArrays(dmin, want.dmin, "FakeQuantGradientCpu dmin " + at, true);
      ExpectSameArrays(dmax, want.dmax, "FakeQuantGradientCpu dmax " + at, true);
    }
  }
}

template <typename T>
void CheckFakeQuant() {
  std::mt19937_64 rng(3);
  for (const ChannelView& v : kFakeQuantViews) {
    const bool per_tensor = v.depth == 1 && v.outer == 1;
    for (int bits : {8, 4, 16, 2}) {
      const bool narrow = bits == 4;
      if (per_tensor) {
        CheckFakeQuantOne<GridStep::kMultiplyByInverse, T>(v, rng, true, bits, narrow);  // Args
        CheckFakeQuantOne<GridStep::kDivideByScale, T>(v, rng, false, bits, narrow);     // Vars
      }
      CheckFakeQuantOne<GridStep::kMultiplyByInverse, T>(v, rng, false, bits, narrow);
    }
  }
}

TEST(FakeQuantFloat) { CheckFakeQuant<float>(); }

// The float per-channel loops' path without a zero channel, and outputs of
// kStreamMinBytes and more (streaming stores), per channel and per tensor.
TEST(FakeQuantFloatWithoutZeroChannelAndStreamed) {
  std::mt19937_64 rng(5);
  const int64_t streamed_rows = kStreamMinBytes / sizeof(float) / 1024 + 3;
  for (const ChannelView& v : {ChannelView{600, 300, 1}, ChannelView{3, 257, 1},
                               ChannelView{streamed_rows, 1024, 1}}) {
    CheckFakeQuantOne<GridStep::kMultiplyByInverse, float>(v, rng, false, 8, false,
                                                           /*zero_channel=*/false);
  }
  CheckFakeQuantOne<GridStep::kMultiplyByInverse, float>(ChannelView{streamed_rows, 1024, 1},
                                                         rng, false, 8, false);
  const ChannelView flat{1, 1, streamed_rows * 1024};
  CheckFakeQuantOne<GridStep::kDivideByScale, float>(flat, rng, false, 8, false);
  CheckFakeQuantOne<GridStep::kMultiplyByInverse, float>(flat, rng, true, 8, false);
}
// Outputs the allocator has just mapped (PrepareOutput maps them in with
// madvise before the loop): the same bits as into a resident buffer, every
// value written, the partial pages at both ends included. The output starts
// one float into a fresh anonymous mapping, which nothing has touched.
class FreshOutput {
 public:
  explicit FreshOutput(int64_t floats)
      : bytes_(static_cast<size_t>(floats + 2) * sizeof(float)),
        map_(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)),
        floats_(floats) {}
  ~FreshOutput() { munmap(map_, bytes_); }
  float* data() const { return static_cast<float*>(map_) + 1; }
  std::vector<float> values() const { return std::vector<float>(data(), data() + floats_); }

 private:
  size_t bytes_;
  void* map_;
  int64_t floats_;
};

TEST(OutputsNotYetMappedIn) {
  std::mt19937_64 rng(9);
  const int64_t rows = kStreamMinBytes / sizeof(float) / 1024 + 3;
  const SplitFor& split = kSplits[2];
  for (const ChannelView& v : {ChannelView{rows, 1024, 1}, ChannelView{1, 1, rows * 1024}}) {
    const std::string where = ViewName(v);
    const std::vector<float> x = RandomData<float>(v.size(), rng, 2.0);
    const std::vector<float> g = RandomData<float>(v.size(), rng, 1.0);
    std::vector<float> lo(v.depth, -0.75f), hi(v.depth, 1.25f);
    {
      FreshOutput fresh(v.size());
      EXPECT_TRUE(!OutputMappedIn(fresh.data(), v.size() * 4));
      std::vector<float> want(v.size());
      const RangeSource<float> range{lo.data(), hi.data(), 0.0f, 0.0f};
      const FakeQuantBounds bounds = ComputeFakeQuantBounds(8, false);
      for (float* out : {want.data(), fresh.data()}) {
        FakeQuantArgs<float> a{x.data(), out, v, bounds, range, true};
        std::vector<unsigned char> buf = Buffer(FakeQuantWorkspaceBytes<float>(v));
        Workspace ws(buf.data(), buf.size());
        FakeQuantForwardCpu<GridStep::kMultiplyByInverse>(a, ws, split);
      }
      EXPECT_TRUE(OutputMappedIn(fresh.data(), v.size() * 4));
      ExpectSameArrays(fresh.values(), want, "FakeQuantForwardCpu fresh " + where);
    }
    {
      FreshOutput fresh(v.size());
      std::vector<float> want(v.size());
      const RangeSource<float> range{nullptr, nullptr, -0.75f, 1.25f};
      for (float* out : {want.data(), fresh.data()}) {
        FakeQuantGradientArgs<float> a{g.data(), x.data(), out, nullptr, nullptr, v,
                                       ComputeFakeQuantBounds(8, false), range, false};
        std::vector<unsigned char> buf = Buffer(FakeQuantGradientWorkspaceBytes<float>(v, false));
        Workspace ws(buf.data(), buf.size());
        FakeQuantGradientCpu(a, ws, split);
      }
      ExpectSameArrays(fresh.values(), want, "FakeQuantGradientCpu fresh " + where);
    }
    {
      FreshOutput fresh(v.size());
      std::vector<float> want(v.size());
      for (float* out : {want.data(), fresh.data()}) {
        QdqForwardArgs<float> a{x.data(), out, v, ComputeQdqBounds(true, 8, false),
                                RoundMode::kHalfToEven, true, lo.data(), hi.data(), false};
        std::vector<unsigned char> buf = Buffer(QdqForwardWorkspaceBytes<float>(v, true));
        Workspace ws(buf.data(), buf.size());
        QdqForwardCpu(a, ws, split);
      }
      ExpectSameArrays(fresh.values(), want, "QdqForwardCpu fresh " + where);
    }
    {
      FreshOutput fresh(v.size());
      std::vector<float> want(v.size());
      std::vector<float> dmin(v.depth), dmax(v.depth);
      for (float* out : {want.data(), fresh.data()}) {
        QdqGradientArgs<float> a{g.data(), x.data(), out, v, lo.data(), hi.data(),
                                 dmin.data(), dmax.data(), v.depth};
        std::vector<unsigned char> buf = Buffer(QdqGradientWorkspaceBytes<float>(v));
        Workspace ws(buf.data(), buf.size());
        QdqGradientCpu(a, ws, split);
      }
      ExpectSameArrays(fresh.values(), want, "QdqGradientCpu fresh " + where);
    }
  }
}

TEST(FakeQuantDouble) { CheckFakeQuant<double>(); }
TEST(FakeQuantHalf) { CheckFakeQuant<Half>(); }
TEST(FakeQuantBFloat16) { CheckFakeQuant<BFloat16>(); }

// ---- workspaces -----------------------------------------------------------------------------

TEST(WorkspaceTakeRefusesToOverrun) {
  alignas(8) unsigned char buf[64];
  Workspace ws(buf, sizeof(buf));
  EXPECT_TRUE(ws.Take<double>(4) == reinterpret_cast<double*>(buf));
  EXPECT_TRUE(ws.Take<float>(8) != nullptr);  // exactly full
  EXPECT_TRUE(ws.Take<float>(1) == nullptr);
  WorkspaceMeter meter;
  meter.Take<char>(3);
  meter.Take<double>(1);  // aligned up to 8
  EXPECT_EQ(meter.used(), size_t{16});
  EXPECT_EQ(QdqForwardWorkspaceBytes<float>(ChannelView{0, 5, 5}, false), size_t{0});
}

}  // namespace
}  // namespace core
}  // namespace tf_qdq

TEST_MAIN()
