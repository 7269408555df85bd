// The op contracts (cc/core/contract) on TF's types: a TensorShape as the
// contract's ShapeView, a failed check as an InvalidArgument.
#ifndef TF_QDQ_CC_TF_CONTRACT_ADAPTER_H_
#define TF_QDQ_CC_TF_CONTRACT_ADAPTER_H_

#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "cc/core/contract/check.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/errors.h"

namespace tf_qdq {

// The shape of op input `operand`. It points into its own copy of the dims
// (inline up to rank 4: no allocation on the small-tensor path).
class TfShape {
 public:
  TfShape(int operand, const tensorflow::TensorShape& shape)
      : dims_(shape.dims()) {
    for (int i = 0; i < shape.dims(); ++i) dims_[i] = shape.dim_size(i);
    view_ = {operand, shape.dims(), dims_.data()};
  }
  TfShape(const TfShape&) = delete;
  TfShape& operator=(const TfShape&) = delete;

  operator const core::ShapeView&() const { return view_; }  // NOLINT: a view
  const core::ShapeView& view() const { return view_; }

 private:
  absl::InlinedVector<int64_t, 4> dims_;
  core::ShapeView view_;
};

inline tensorflow::Status ToStatus(const core::Checker& check) {
  if (check.ok()) return tensorflow::Status();
  return tensorflow::errors::InvalidArgument(check.error());
}

// [outer, depth, inner] around `axis` of a checked shape (-1: per tensor).
inline core::ChannelView ViewOf(const TfShape& shape, int axis) {
  return core::ViewAroundAxis(shape.view(), axis);
}

}  // namespace tf_qdq

#endif  // TF_QDQ_CC_TF_CONTRACT_ADAPTER_H_
