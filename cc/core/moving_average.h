// The moving-average range of tf_qdq.keras' ActivationQuantizer: one training
// step's update of its (min, max, initialized) state from the batch's finite
// range, and the grid the batch is then quantized on. Framework-free, float32
// throughout, one rounding per operation (the build has -ffp-contract=off), in
// the order of the TF-op composition in tf_qdq/_keras_activations.py, which
// runs where the fused op cannot (XLA, GPUs, several replicas): the two give the
// same bits (tests/keras/test_moving_average.py).
#ifndef TF_QDQ_CC_CORE_MOVING_AVERAGE_H_
#define TF_QDQ_CC_CORE_MOVING_AVERAGE_H_

#include "cc/core/numeric.h"

namespace tf_qdq {
namespace core {

struct MovingAverageRange {
  float min;
  float max;
  // 0 until a batch with a finite value was seen, then 1: the first such batch
  // replaces the initial range instead of being averaged into it.
  float initialized;
};

struct MovingAverageStep {
  MovingAverageRange range;  // the new state
  float grid_min;            // the range the batch is quantized on
  float grid_max;
};

// batch_min/batch_max: the batch's finite range in float32; has_data: it has a
// finite value (batch_min <= batch_max in the input's type). The batch range is
// widened to hold 0 (TF's Minimum/Maximum: the left operand on ties), and has
// weight 1 - momentum once initialized, 1 for the first batch, 0 without data.
// symmetric: the grid is [-a, a * 127/128] with a = max(-min, max), the int8
// symmetric grid with zero point 0.
inline MovingAverageStep UpdateMovingAverage(const MovingAverageRange& old, float batch_min,
                                             float batch_max, bool has_data, float momentum,
                                             bool symmetric) {
  const float data = has_data ? 1.0f : 0.0f;
  const float lo = MinPreferLeft(batch_min, 0.0f);
  const float hi = MaxPreferLeft(batch_max, 0.0f);
  const float weight = data * (1.0f - momentum * old.initialized);
  const float keep = 1.0f - weight;
  MovingAverageStep step;
  step.range.min = old.min * keep + lo * weight;
  step.range.max = old.max * keep + hi * weight;
  step.range.initialized = MaxPreferLeft(old.initialized, data);
  if (symmetric) {
    const float a = MaxPreferLeft(-step.range.min, step.range.max);
    step.grid_min = -a;
    step.grid_max = a * (127.0f / 128.0f);
  } else {
    step.grid_min = step.range.min;
    step.grid_max = step.range.max;
  }
  return step;
}

}  // namespace core
}  // namespace tf_qdq

#endif  // TF_QDQ_CC_CORE_MOVING_AVERAGE_H_
