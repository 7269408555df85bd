// The activations TFLite fuses into the int8 op before its output quantizer
// (ReLU, ReLU6), as TF 2.21's CPU kernels compute them, for the fused training
// step of tf_qdq.keras (FakeQuantWithMovingAverage): the quantizer applies the
// activation itself, and its gradient the activation's, saving a pass over the
// tensor each way. Framework-free; host and device.
#ifndef TF_QDQ_CC_CORE_ACTIVATION_H_
#define TF_QDQ_CC_CORE_ACTIVATION_H_

#include <type_traits>

#include "cc/core/numeric.h"

namespace tf_qdq {
namespace core {

enum class Activation : int { kLinear = 0, kRelu = 1, kRelu6 = 2 };

// Relu: max(x, 0); Relu6: min(max(x, 0), 6), each the left operand on ties
// (cwiseMax/cwiseMin): NaN stays NaN, -0 stays -0.
template <Activation kAct, typename C>
QDQ_INLINE C Activate(C x) {
  if (kAct == Activation::kLinear) return x;
  const C r = MaxPreferLeft(x, C(0));
  return kAct == Activation::kRelu6 ? MinPreferLeft(r, C(6)) : r;
}

// The factor ReluGrad/Relu6Grad multiply the incoming gradient by: 1 where the
// input is strictly inside the linear part, else 0 (NaN: 0). A product, not a
// select: a NaN or infinite gradient outside stays NaN, a negative one is -0.
template <Activation kAct, typename C>
QDQ_INLINE C ActivationSlope(C x) {
  const bool inside = kAct == Activation::kRelu6 ? (x > C(0) && x < C(6)) : x > C(0);
  return inside ? C(1) : C(0);
}

// Calls fn(std::integral_constant<Activation, a>) for the runtime value a.
template <typename Fn>
inline void DispatchActivation(Activation a, Fn&& fn) {
  switch (a) {
    case Activation::kRelu:
      return fn(std::integral_constant<Activation, Activation::kRelu>());
    case Activation::kRelu6:
      return fn(std::integral_constant<Activation, Activation::kRelu6>());
    case Activation::kLinear:
      break;
  }
  fn(std::integral_constant<Activation, Activation::kLinear>());
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_ACTIVATION_H_
