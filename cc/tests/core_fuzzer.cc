// libFuzzer target on the core's entry points (cc/core/cpu/*.h):
// hostile shapes (empty, one element, channel runs around the block, chunk and
// lane sizes), attrs (every num_bits / narrow_range / signed_input / round_mode
// the op layer accepts, per tensor and per channel) and values (raw bit
// patterns: NaN payloads, infinities, denormals, huge and inverted ranges).
//
// It also runs every op contract (cc/core/contract) on hostile shapes (ranks
// 0-6, unknown ranks and dims, huge dims) and attrs (any int32 axis and
// num_bits): the trace mode, given only known shapes, must decide exactly as
// the strict mode and defer nothing.
//
// Oracles, each a crash (so any finding fails the run):
//  * AddressSanitizer / UndefinedBehaviorSanitizer (the build adds them): the
//    workspace is a heap buffer of exactly *WorkspaceBytes() bytes;
//  * the result is the same, bit for bit, however the work is split
//    (one call, one unit at a time, random pieces);
//  * element-wise outputs equal quantize_math.h's formula on that element.
//
//   make cc-fuzz   (or: bazel-bin/cc/tests/core_fuzzer -max_total_time=60 CORPUS_DIR)
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cc/core/contract/fake_quant.h"
#include "cc/core/contract/qdq.h"
#include "cc/core/cpu/fake_quant.h"
#include "cc/core/cpu/fake_quant_gradient.h"
#include "cc/core/cpu/qdq.h"
#include "cc/core/layout.h"
#include "cc/core/numeric.h"
#include "cc/core/op_args.h"
#include "cc/core/quantize_math.h"

namespace tf_qdq {
namespace core {
namespace {

[[noreturn]] void Finding(const char* what) {
  std::fprintf(stderr, "core_fuzzer: %s\n", what);
  std::abort();
}

struct FuzzFor {
  int kind;
  uint64_t seed;
  template <typename Fn>
  void operator()(int64_t units, int64_t, Fn&& fn) const {
    ScopedFlushDenormals flush;
    if (units <= 0) return;
    if (kind == 0) return fn(int64_t{0}, units);
    uint64_t s = seed | 1;
    for (int64_t b = 0; b < units;) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      int64_t m = kind == 1 ? 1 : 1 + static_cast<int64_t>(s % 97);
      if (m > units - b) m = units - b;
      fn(b, b + m);
      b += m;
    }
  }
};

template <typename T>
uint64_t Bits(T v) {
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}

// Bit for bit, half NaNs included: FloatToHalf keeps a NaN's payload as the
// F16C conversion does (this fuzzer once found the tail of a block
// canonicalising NaNs where the vector body kept them).
template <typename T>
bool Same(T a, T b) {
  return Bits(a) == Bits(b);
}

template <typename T>
bool SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!Same(a[i], b[i])) return false;
  return true;
}

// A heap buffer of exactly `bytes` (ASan catches any overrun of the declared need).
struct ExactWorkspace {
  explicit ExactWorkspace(size_t bytes)
      : data(static_cast<unsigned char*>(std::malloc(bytes > 0 ? bytes : 1))), ws(data, bytes) {}
  ~ExactWorkspace() { std::free(data); }
  unsigned char* data;
  Workspace ws;
};

template <typename T>
std::vector<T> Values(FuzzedDataProvider& in, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (in.remaining_bytes() >= sizeof(T)) {
      in.ConsumeData(&v[i], sizeof(T));
    } else {  // data ran out: a cheap deterministic pattern
      v[i] = StoreAs<T>(static_cast<ComputeType<T>>((i % 17) - 8) /
                        static_cast<ComputeType<T>>(4));
    }
  }
  return v;
}

// A shape the loops find interesting: sizes around kBlock (1024), kFlatLanes
// (64), kFlatChunk (4096), kRowChunk (256) and kLongChannelRun (64).
int64_t Dim(FuzzedDataProvider& in) {
  static const int64_t kEdges[] = {0, 1, 2, 3, 7, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025};
  if (in.ConsumeBool()) return kEdges[in.ConsumeIntegralInRange<int>(0, 13)];
  return in.ConsumeIntegralInRange<int64_t>(0, 300);
}

ChannelView View(FuzzedDataProvider& in, bool per_channel_last_axis) {
  ChannelView v{Dim(in), Dim(in), Dim(in)};
  if (per_channel_last_axis) v.inner = 1;
  while (v.size() > 50000) {  // keep each input fast
    v.outer /= 2;
    if (v.size() > 50000) v.inner = (v.inner + 1) / 2;
  }
  return v;
}

template <typename T>
void FuzzQdq(FuzzedDataProvider& in) {
  using C = ComputeType<T>;
  const bool per_tensor = in.ConsumeBool();
  ChannelView v = per_tensor ? PerTensorView(in.ConsumeIntegralInRange<int64_t>(0, 20000))
                             : View(in, false);
  const bool sign = in.ConsumeBool();
  const int bits = in.ConsumeIntegralInRange<int>(1, sign ? 61 : 62);  // what the ops accept
  const bool narrow = in.ConsumeBool();
  const RoundMode mode = in.ConsumeBool() ? RoundMode::kHalfUp : RoundMode::kHalfToEven;
  const bool range_given = in.ConsumeBool();
  const bool gradient = in.ConsumeBool();
  const std::vector<T> lo = Values<T>(in, v.depth), hi = Values<T>(in, v.depth);
  if (per_tensor && range_given && !gradient && !(ToCompute(lo[0]) <= ToCompute(hi[0])))
    return;  // the op layer raises "Invalid range" here
  const std::vector<T> x = Values<T>(in, v.size());
  const std::vector<T> g = gradient ? Values<T>(in, v.size()) : std::vector<T>();
  const uint64_t seed = in.ConsumeIntegral<uint64_t>();
  std::vector<T> first;
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<T> y(x.size());
    if (!gradient) {
      QdqForwardArgs<T> a{x.data(), y.data(), v, ComputeQdqBounds(sign, bits, narrow), mode,
                          range_given, lo.data(), hi.data(), per_tensor && range_given};
      ExactWorkspace w(QdqForwardWorkspaceBytes<T>(v, range_given));
      QdqForwardCpu(a, w.ws, FuzzFor{kind, seed});
    } else {
      std::vector<T> dmin(v.depth), dmax(v.depth);
      QdqGradientArgs<T> a{g.data(), x.data(), y.data(), v, lo.data(), hi.data(),
                           dmin.data(), dmax.data(), v.depth};
      ExactWorkspace w(QdqGradientWorkspaceBytes<T>(v));
      QdqGradientCpu(a, w.ws, FuzzFor{kind, seed});
      for (int64_t c = 0; c < v.depth; ++c)
        if (Bits(dmin[c]) != 0 || Bits(dmax[c]) != 0) Finding("QDQ range gradient not +0");
      ScopedFlushDenormals flush;
      for (int64_t i = 0; i < v.size(); ++i) {
        const int64_t c = (i / v.inner) % v.depth;
        const T want = StoreAs<T>(QdqGradient(ToCompute(g[i]), ToCompute(x[i]),
                                              ToCompute(lo[c]), ToCompute(hi[c])));
        if (!Same(want, y[i])) Finding("QdqGradientCpu differs from the formula");
      }
    }
    if (kind == 0) first = y;
    else if (!SameBits(first, y)) Finding("QDQ result depends on the work split");
  }
  (void)sizeof(C);
}

template <typename T>
void FuzzFakeQuant(FuzzedDataProvider& in) {
  using C = ComputeType<T>;
  const int op = in.ConsumeIntegralInRange<int>(0, 2);  // Args, Vars, PerChannel
  ChannelView v = op == 2 ? View(in, true)
                          : PerTensorView(in.ConsumeIntegralInRange<int64_t>(0, 20000));
  const int bits = in.ConsumeIntegralInRange<int>(2, 16);
  const bool narrow = in.ConsumeBool();
  const bool gradient = in.ConsumeBool();
  const FakeQuantBounds bounds = ComputeFakeQuantBounds(bits, narrow);
  std::vector<T> lo, hi;
  RangeSource<T> range{nullptr, nullptr, C(0), C(0)};
  if (op == 0) {
    // Float attrs; the op layer requires min < max (after denormal flushing).
    float amin, amax;
    amin = in.ConsumeFloatingPoint<float>();
    amax = in.ConsumeFloatingPoint<float>();
    if (!(FlushDenormal(amin) < FlushDenormal(amax))) return;
    range.attr_min = static_cast<C>(FlushDenormal(amin));
    range.attr_max = static_cast<C>(FlushDenormal(amax));
  } else {
    lo = Values<T>(in, v.depth);
    hi = Values<T>(in, v.depth);
    range.min = lo.data();
    range.max = hi.data();
  }
  const std::vector<T> x = Values<T>(in, v.size());
  const std::vector<T> g = gradient ? Values<T>(in, v.size()) : std::vector<T>();
  const uint64_t seed = in.ConsumeIntegral<uint64_t>();
  const bool zero_range_rule = op != 0;
  std::vector<T> first, first_min, first_max;
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<T> y(x.size());
    std::vector<T> dmin(v.depth), dmax(v.depth);
    if (!gradient) {
      FakeQuantArgs<T> a{x.data(), y.data(), v, bounds, range, zero_range_rule};
      ExactWorkspace w(FakeQuantWorkspaceBytes<T>(v));
      if (op == 1) FakeQuantForwardCpu<GridStep::kDivideByScale>(a, w.ws, FuzzFor{kind, seed});
      else FakeQuantForwardCpu<GridStep::kMultiplyByInverse>(a, w.ws, FuzzFor{kind, seed});
      if (kind == 0) {
        ScopedFlushDenormals flush;
        for (int64_t i = 0; i < v.size(); ++i) {
          const int64_t c = i % v.depth;
          const FakeQuantNudged<C> n = NudgeFakeQuantRange(range.Min(c), range.Max(c), bounds);
          const C e = ToCompute(x[i]);
          const C r = (zero_range_rule && n.zero_range) ? C(0)
                      : op == 1 ? FakeQuantize<GridStep::kDivideByScale>(e, n)
                                : FakeQuantize<GridStep::kMultiplyByInverse>(e, n);
          if (!Same(StoreAs<T>(r), y[i])) {
            std::fprintf(stderr, "op %d size %lld depth %lld i %lld: x 0x%llx got 0x%llx want 0x%llx\n",
                         op, static_cast<long long>(v.size()), static_cast<long long>(v.depth),
                         static_cast<long long>(i), static_cast<unsigned long long>(Bits(x[i])),
                         static_cast<unsigned long long>(Bits(y[i])),
                         static_cast<unsigned long long>(Bits(StoreAs<T>(r))));
            Finding("FakeQuant forward differs from the formula");
          }
        }
      }
    } else {
      FakeQuantGradientArgs<T> a{g.data(), x.data(), y.data(),
                                 op == 0 ? nullptr : dmin.data(),
                                 op == 0 ? nullptr : dmax.data(),
                                 v, bounds, range, zero_range_rule};
      ExactWorkspace w(FakeQuantGradientWorkspaceBytes<T>(v, op != 0));
      FakeQuantGradientCpu(a, w.ws, FuzzFor{kind, seed});
    }
    if (kind == 0) {
      first = y;
      first_min = dmin;
      first_max = dmax;
    } else if (!SameBits(first, y) || !SameBits(first_min, dmin) || !SameBits(first_max, dmax)) {
      Finding("FakeQuant result depends on the work split");
    }
  }
}

template <typename T>
void FuzzOne(FuzzedDataProvider& in) {
  if (in.ConsumeBool()) FuzzQdq<T>(in);
  else FuzzFakeQuant<T>(in);
}

// ---- the contracts --------------------------------------------------------------

struct FuzzShape {
  std::vector<int64_t> dims;
  ShapeView view;
};

void ConsumeShape(FuzzedDataProvider& in, int operand, bool allow_unknown, FuzzShape* s) {
  const int rank = in.ConsumeIntegralInRange<int>(allow_unknown ? -1 : 0, 6);
  s->dims.clear();
  for (int i = 0; i < rank; ++i) {
    const int kind = in.ConsumeIntegralInRange<int>(0, 3);
    s->dims.push_back(kind == 0 ? in.ConsumeIntegralInRange<int64_t>(0, 4)
                      : kind == 1 ? in.ConsumeIntegralInRange<int64_t>(0, int64_t{1} << 40)
                      : kind == 2 && allow_unknown ? kUnknownDim
                                                   : in.ConsumeIntegralInRange<int64_t>(0, 64));
  }
  s->view = {operand, rank, s->dims.data()};
}

// Every contract on the same shapes and attrs, in one mode.
template <typename Fn>
void EachContract(bool trace, const FuzzShape* s, Fn&& result) {
  const int axis = static_cast<int>(s[0].dims.size()) % 3 - 1;
  const QdqAttrs qdq{true, 8, true, RoundMode::kHalfToEven, false, axis};
  {
    Checker check(trace);
    CheckQdqForwardInputs(check, qdq, s[0].view, s[1].view, s[2].view);
    result(check);
  }
  {
    Checker check(trace);
    CheckQdqGradientInputs(check, axis, s[3].view, s[0].view, s[1].view, s[2].view);
    result(check);
  }
  for (FakeQuantOp op : {FakeQuantOp::kArgs, FakeQuantOp::kVars, FakeQuantOp::kVarsPerChannel}) {
    Checker forward(trace);
    CheckFakeQuantForwardInputs(forward, op, s[0].view, s[1].view, s[2].view);
    result(forward);
    Checker gradient(trace);
    CheckFakeQuantGradientInputs(gradient, op, s[3].view, s[0].view, s[1].view, s[2].view,
                                 "node", "type");
    result(gradient);
  }
}

void FuzzContracts(FuzzedDataProvider& in) {
  const bool unknown = in.ConsumeBool();
  FuzzShape s[4];
  for (int i = 0; i < 4; ++i) ConsumeShape(in, i, unknown, &s[i]);
  QdqAttrs attrs{in.ConsumeBool(), in.ConsumeIntegral<int>(), in.ConsumeBool(),
                 RoundMode::kHalfToEven, in.ConsumeBool(), in.ConsumeIntegral<int>()};
  for (bool trace : {false, true}) {
    Checker check(trace);
    CheckQdqAttrs(check, in.ConsumeBool() ? "HALF_UP" : "BOGUS", &attrs);
    CheckQdqForwardInputs(check, attrs, s[0].view, s[1].view, s[2].view);
    Checker grad(trace);
    CheckQdqGradientInputs(grad, attrs.axis, s[3].view, s[0].view, s[1].view, s[2].view);
    Checker bits(trace);
    CheckFakeQuantArgsAttrs(bits, in.ConsumeFloatingPoint<float>(),
                            in.ConsumeFloatingPoint<float>(), attrs.num_bits);
  }
  if (unknown) {  // unknowns: only that nothing crashes
    EachContract(true, s, [](const Checker&) {});
    return;
  }
  std::vector<std::string> strict;
  EachContract(false, s, [&](const Checker& c) { strict.push_back(c.error()); });
  size_t i = 0;
  EachContract(true, s, [&](const Checker& c) {
    if (!c.deferred().empty()) Finding("trace mode deferred a check on known shapes");
    if (c.error() != strict[i++]) Finding("trace mode decided unlike the strict mode");
  });
}

}  // namespace
}  // namespace core
}  // namespace tf_qdq

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 4: tf_qdq::core::FuzzContracts(in); break;
    case 0: tf_qdq::core::FuzzOne<float>(in); break;
    case 1: tf_qdq::core::FuzzOne<double>(in); break;
    case 2: tf_qdq::core::FuzzOne<tf_qdq::core::Half>(in); break;
    default: tf_qdq::core::FuzzOne<tf_qdq::core::BFloat16>(in); break;
  }
  return 0;
}
