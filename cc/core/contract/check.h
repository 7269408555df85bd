// How an op's contract is written and enforced, framework-free and host-only.
//
// Each op states its checks once (contract/qdq.h, contract/fake_quant.h), in
// TF 2.21's order and with its messages, as calls on a Checker. Three callers
// enforce the same statement:
//  * the TF OpKernels (cc/tf), with every shape known: the first failure
//    becomes an InvalidArgument;
//  * the core module (cc/python), likewise, raising ValueError;
//  * the XLA lowering (tf_qdq/_xla/, through tf_qdq._core), at trace time
//    with shapes that may be partly unknown: a check that the known part
//    already decides raises then; one that it cannot decide is returned as a
//    DeferredCheck, which the lowering turns into a shape op that fails when
//    XLA compiles for the actual shapes (XLA drops assertions).
// Checks that read tensor values (QDQ's "Invalid range") are not shape checks
// and are stated separately; XLA cannot make them.
#ifndef TF_QDQ_CC_CORE_CONTRACT_CHECK_H_
#define TF_QDQ_CC_CORE_CONTRACT_CHECK_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cc/core/layout.h"

namespace tf_qdq {
namespace core {

constexpr int kUnknownRank = -1;
constexpr int64_t kUnknownDim = -1;

// An operand's shape as a contract sees it, without owning it. `operand` is
// the op input's index (what a DeferredCheck names).
struct ShapeView {
  int operand;
  int rank;             // kUnknownRank when unknown
  const int64_t* dims;  // `rank` sizes, kUnknownDim where unknown

  bool known_rank() const { return rank != kUnknownRank; }
  int64_t dim(int i) const { return dims[i]; }
  bool fully_known() const {
    if (!known_rank()) return false;
    for (int i = 0; i < rank; ++i) {
      if (dims[i] == kUnknownDim) return false;
    }
    return true;
  }
};

// TF's TensorShape::DebugString: "[2,3]", "[?,3]" (partly known), "<unknown>".
inline std::string ShapeString(const ShapeView& s) {
  if (!s.known_rank()) return "<unknown>";
  std::string out = "[";
  for (int i = 0; i < s.rank; ++i) {
    if (i > 0) out += ",";
    out += s.dims[i] == kUnknownDim ? "?" : std::to_string(s.dims[i]);
  }
  return out + "]";
}

// [outer, depth, inner] around `axis` of a fully known shape (-1: the whole
// tensor is one channel).
inline ChannelView ViewAroundAxis(const ShapeView& s, int axis) {
  if (axis == -1) {
    int64_t size = 1;
    for (int i = 0; i < s.rank; ++i) size *= s.dims[i];
    return PerTensorView(size);
  }
  ChannelView v{1, s.dims[axis], 1};
  for (int i = 0; i < axis; ++i) v.outer *= s.dims[i];
  for (int i = axis + 1; i < s.rank; ++i) v.inner *= s.dims[i];
  return v;
}

// A message piece as TF's StrCat writes it. Floating point: six significant
// digits, "%g" style (absl's SixDigits): 1.23457e+08, -0, inf, nan.
inline std::string Piece(const std::string& s) { return s; }
inline std::string Piece(const char* s) { return s; }
inline std::string Piece(int v) { return std::to_string(v); }
inline std::string Piece(int64_t v) { return std::to_string(v); }
inline std::string Piece(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}
inline std::string Piece(float v) { return Piece(static_cast<double>(v)); }

inline std::string Cat() { return std::string(); }
template <typename First, typename... Rest>
std::string Cat(const First& first, const Rest&... rest) {
  return Piece(first) + Cat(rest...);
}

// A check the XLA lowering makes when XLA compiles for the actual shapes.
struct DeferredCheck {
  enum Kind : int {
    kRank = 0,       // operand has rank `value`
    kAxisInRank = 1, // operand has more than `value` dimensions
    kSize = 2,       // dim 0 of operand equals dim `value` of `other`
    kSameShape = 3,  // operand and `other` have equal shapes
  };
  Kind kind;
  int operand;
  int other;      // kSize, kSameShape; -1 otherwise
  int64_t value;  // the rank, or the axis
  std::string message;  // unknown numbers written as N (actual) and D (expected)
};

// Enforces a contract's checks in the order they are stated. Once one has
// failed, later checks are not evaluated (as in TF, whose kernels return at
// the first failure). With `trace` set (the XLA lowering), checks that the
// shapes known so far cannot decide are collected instead of evaluated.
class Checker {
 public:
  explicit Checker(bool trace = false) : trace_(trace) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::vector<DeferredCheck>& deferred() const { return deferred_; }

  // A check decided by attrs (or by values the caller has read).
  template <typename MessageFn>
  void Require(bool holds, MessageFn&& message) {
    if (ok() && !holds) error_ = message();
  }

  // t has rank `rank`. message(actual rank, or "N" when deferred).
  template <typename MessageFn>
  void RequireRank(const ShapeView& t, int rank, MessageFn&& message) {
    if (!ok()) return;
    if (!t.known_rank()) return Defer(DeferredCheck::kRank, t.operand, -1, rank, message("N"));
    if (t.rank != rank) error_ = message(Piece(t.rank));
  }

  // t has more than `axis` dimensions (axis >= 0). message(actual rank).
  template <typename MessageFn>
  void RequireAxisInRank(const ShapeView& t, int64_t axis, MessageFn&& message) {
    if (!ok()) return;
    if (!t.known_rank()) return Defer(DeferredCheck::kAxisInRank, t.operand, -1, axis, message("N"));
    if (axis >= t.rank) error_ = message(Piece(t.rank));
  }

  // dim 0 of t (rank 1, checked before) equals dim `axis` of x (which has it,
  // checked before). message(size of t, dim of x), "N"/"D" when deferred.
  template <typename MessageFn>
  void RequireSize(const ShapeView& t, const ShapeView& x, int64_t axis, MessageFn&& message) {
    if (!ok()) return;
    const int64_t size = t.known_rank() && t.rank == 1 ? t.dim(0) : kUnknownDim;
    const int64_t depth = x.known_rank() && axis < x.rank ? x.dim(static_cast<int>(axis)) : kUnknownDim;
    if (size == kUnknownDim || depth == kUnknownDim) {
      return Defer(DeferredCheck::kSize, t.operand, x.operand, axis, message("N", "D"));
    }
    if (size != depth) error_ = message(Piece(size), Piece(depth));
  }

  // a and b have equal shapes.
  template <typename MessageFn>
  void RequireSameShape(const ShapeView& a, const ShapeView& b, MessageFn&& message) {
    if (!ok()) return;
    if (!a.fully_known() || !b.fully_known()) {
      return Defer(DeferredCheck::kSameShape, a.operand, b.operand, 0, message());
    }
    bool same = a.rank == b.rank;
    for (int i = 0; same && i < a.rank; ++i) same = a.dim(i) == b.dim(i);
    if (!same) error_ = message();
  }

 private:
  void Defer(DeferredCheck::Kind kind, int operand, int other, int64_t value,
             std::string message) {
    // Outside trace mode every shape is known and nothing is deferred.
    if (trace_) deferred_.push_back({kind, operand, other, value, std::move(message)});
  }

  bool trace_;
  std::string error_;
  std::vector<DeferredCheck> deferred_;
};

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_CONTRACT_CHECK_H_
