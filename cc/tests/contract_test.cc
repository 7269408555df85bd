// The op contracts (cc/core/contract) on hand-picked shapes: TF 2.21's
// messages in TF's order, the formula variant of each op, the arguments they
// build, and what the trace mode (the XLA lowering's) defers. The Python
// suites check the same messages against TF's built-in kernels.
#include <limits>
#include <string>
#include <vector>

#include "cc/core/contract/fake_quant.h"
#include "cc/core/contract/qdq.h"
#include "cc/tests/test_util.h"

#define EXPECT_ERROR(check, message)                                                  \
  (((check).error() == (message))                                                     \
       ? (void)0                                                                      \
       : ::tf_qdq::testing::Fail(__FILE__, __LINE__,                                  \
                                 "error '" + (check).error() + "' vs '" + (message) + "'"))

namespace tf_qdq {
namespace core {
namespace {

// A shape that owns its dims.
struct Shape {
  Shape(int operand, std::vector<int64_t> d) : dims(std::move(d)) {
    view = {operand, static_cast<int>(dims.size()), dims.data()};
  }
  std::vector<int64_t> dims;
  ShapeView view;
};

ShapeView UnknownRank(int operand) { return {operand, kUnknownRank, nullptr}; }

QdqAttrs Qdq(int axis, bool range_given) {
  return {true, 8, range_given, RoundMode::kHalfToEven, false, axis};
}

TEST(MessagePiecesAreWrittenAsTfWritesThem) {
  EXPECT_TRUE(Cat("was: ", 1.0f, " >= ", 1.0f) == "was: 1 >= 1");
  EXPECT_TRUE(Cat(123456789.0f) == "1.23457e+08");
  EXPECT_TRUE(Cat(0.1, " ", -0.0, " ", 1e-30) == "0.1 -0 1e-30");
  EXPECT_TRUE(Cat(std::numeric_limits<float>::quiet_NaN()) == "nan");
  EXPECT_TRUE(Cat(-std::numeric_limits<double>::infinity()) == "-inf");
  const Shape s(0, {2, kUnknownDim, 3});
  EXPECT_TRUE(ShapeString(s.view) == "[2,?,3]");
  EXPECT_TRUE(ShapeString(UnknownRank(0)) == "<unknown>");
}

TEST(QdqAttrChecksComeInTfsOrder) {
  QdqAttrs a = Qdq(-1, false);
  a.num_bits = 62;
  Checker check;
  CheckQdqAttrs(check, "HALF_AWAY", &a);  // both bad: num_bits first
  EXPECT_ERROR(check, "num_bits is out of range: 62 with signed_input_ 1");
  a.num_bits = 8;
  Checker round;
  CheckQdqAttrs(round, "HALF_UP", &a);
  EXPECT_TRUE(round.ok() && a.round_mode == RoundMode::kHalfUp);
}

TEST(QdqForwardChecks) {
  const Shape x(0, {2, 3}), scalar(1, {}), vec2(2, {2}), vec3(2, {3});
  {
    Checker check;  // axis + 1 computed in int32, as TF does
    CheckQdqForwardInputs(check, Qdq(2147483647, false), x.view, scalar.view, scalar.view);
    EXPECT_ERROR(check, "Shape must be at least rank -2147483648 but is rank 2");
  }
  {
    Checker check;  // range not given: min/max are ignored
    CheckQdqForwardInputs(check, Qdq(-1, false), x.view, vec2.view, vec3.view);
    EXPECT_TRUE(check.ok());
  }
  {
    Checker check;
    CheckQdqForwardInputs(check, Qdq(1, true), x.view, vec3.view, vec2.view);
    EXPECT_ERROR(check, "input_max_tensor has incorrect size, was 2 expected 3 to match dim 1 "
                        "of the input [2]");
  }
  {
    Checker check;
    CheckQdqRangeOrder(check, 0.5f, -0.25f);
    EXPECT_ERROR(check, "Invalid range: input_min 0.5 > input_max -0.25");
  }
}

TEST(QdqGradientChecksAllRanksBeforeSizes) {
  const Shape x(1, {2, 3}), g(0, {2, 3}), min3(2, {3}), max_scalar(3, {});
  Checker check;
  CheckQdqGradientInputs(check, 1, g.view, x.view, min3.view, max_scalar.view);
  EXPECT_ERROR(check, "Shape must be rank 1 for input_max_tensor when the axis is specified");
}

TEST(FakeQuantFormulaVariants) {
  EXPECT_TRUE(GridStepOf(FakeQuantOp::kArgs) == GridStep::kMultiplyByInverse);
  EXPECT_TRUE(GridStepOf(FakeQuantOp::kVars) == GridStep::kDivideByScale);
  EXPECT_TRUE(GridStepOf(FakeQuantOp::kVarsPerChannel) == GridStep::kMultiplyByInverse);
  EXPECT_TRUE(!HasZeroRangeRule(FakeQuantOp::kArgs) && HasZeroRangeRule(FakeQuantOp::kVars));
  const Shape x(0, {4, 5, 3});
  const ChannelView pc = FakeQuantView(FakeQuantOp::kVarsPerChannel, x.view);
  EXPECT_TRUE(pc.outer == 20 && pc.depth == 3 && pc.inner == 1);
  const ChannelView pt = FakeQuantView(FakeQuantOp::kVars, x.view);
  EXPECT_TRUE(pt.outer == 1 && pt.depth == 1 && pt.inner == 60);
  float in = 0, out = 0, wrt = 0, lo = 0, hi = 0;
  const auto args = MakeFakeQuantGradientArgs<float>(
      FakeQuantOp::kArgs, 8, true, pt, AttrRange<float>(-1.0f, 1.0f), &in, &in, &wrt, &lo, &hi);
  EXPECT_TRUE(args.wrt_min == nullptr && args.wrt_max == nullptr);  // Args: no range outputs
  EXPECT_EQ(args.bounds.quant_min, 1);
  (void)out;
}

TEST(FakeQuantChecks) {
  {
    Checker check;  // Args: the range before num_bits
    CheckFakeQuantArgsAttrs(check, 1.0f, 1.0f, 1);
    EXPECT_ERROR(check, "min has to be smaller than max, was: 1 >= 1");
  }
  {
    const Shape x(0, {2, 3}), min2(1, {2}), max_scalar(2, {});
    Checker check;  // min's size before max's rank
    CheckFakeQuantForwardInputs(check, FakeQuantOp::kVarsPerChannel, x.view, min2.view,
                                max_scalar.view);
    EXPECT_ERROR(check, "min has incorrect size, expected 3 was 2");
  }
  {
    const Shape x(0, {}), min1(1, {1});
    Checker check;  // TF aborts here; the contract raises
    CheckFakeQuantForwardInputs(check, FakeQuantOp::kVarsPerChannel, x.view, min1.view,
                                min1.view);
    EXPECT_ERROR(check, "inputs must be at least rank 1 for a per-channel op, but is rank 0");
  }
  {
    const Shape g(0, {3, 2}), x(1, {2, 3});
    Checker check;
    CheckFakeQuantGradientInputs(check, FakeQuantOp::kArgs, g.view, x.view, x.view, x.view,
                                 "node", "TfQdq>FakeQuantWithMinMaxArgsGradient");
    EXPECT_ERROR(check, "Inputs to operation node of type TfQdq>FakeQuantWithMinMaxArgsGradient "
                        "must have the same size and shape.  Input 0: [3,2] != input 1: [2,3]");
  }
}

TEST(TraceModeDefersWhatShapesCannotDecide) {
  const Shape min3(1, {3}), max3(2, {3});
  Checker check(/*trace=*/true);
  CheckFakeQuantForwardInputs(check, FakeQuantOp::kVarsPerChannel, UnknownRank(0), min3.view,
                              max3.view);
  EXPECT_TRUE(check.ok());
  EXPECT_EQ(check.deferred().size(), 3u);
  EXPECT_TRUE(check.deferred()[0].kind == DeferredCheck::kAxisInRank);
  EXPECT_TRUE(check.deferred()[1].kind == DeferredCheck::kSize);
  EXPECT_TRUE(check.deferred()[1].message == "min has incorrect size, expected D was N");
  EXPECT_EQ(check.deferred()[1].operand, 1);
  EXPECT_EQ(check.deferred()[1].other, 0);
  // Outside trace mode nothing is deferred (every shape is known there).
  Checker strict;
  const Shape x(0, {2, 3});
  CheckFakeQuantForwardInputs(strict, FakeQuantOp::kVarsPerChannel, x.view, min3.view, max3.view);
  EXPECT_TRUE(strict.ok() && strict.deferred().empty());
}

}  // namespace
}  // namespace core
}  // namespace tf_qdq

TEST_MAIN()
