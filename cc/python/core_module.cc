// tf_qdq.core: the framework-free kernels on NumPy arrays, without TensorFlow.
//
// The same functions as the TF ops, with the same argument names, for
// float16, float32 and float64 arrays. `device="cuda"` runs the CUDA kernels
// when the module was built with CUDA (TF_QDQ_WITH_CUDA; see CMakeLists.txt):
// that is how the GPU kernels are tested on a machine without TensorFlow.
//
// Validation is the core's own: bad arguments raise ValueError (no aborts).
// Error messages are not TF's; the TF ops are the place for TF parity.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cc/core/cpu/fake_quant.h"
#include "cc/core/cpu/qdq.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"

#ifdef TF_QDQ_WITH_CUDA
#include "cc/python/core_cuda.h"
#endif

namespace py = pybind11;

namespace tf_qdq {
namespace {

using core::ChannelView;

// numpy float16 has the bits of core::Half.
template <typename T>
struct NumpyTypeOf {
  using type = T;
};
template <>
struct NumpyTypeOf<core::Half> {
  using type = uint16_t;
};

template <typename T>
using Array = py::array_t<typename NumpyTypeOf<T>::type, py::array::c_style>;

template <typename T>
const T* DataOf(const Array<T>& a) {
  return reinterpret_cast<const T*>(a.data());
}
template <typename T>
T* MutableDataOf(Array<T>& a) {
  return reinterpret_cast<T*>(a.mutable_data());
}

template <typename T>
Array<T> EmptyLike(const py::array& shape_of) {
  std::vector<py::ssize_t> shape(shape_of.shape(), shape_of.shape() + shape_of.ndim());
  return Array<T>(shape);
}

// A serial ParallelFor: the module is single-threaded (deterministic anyway).
// Denormals are flushed as in TF's CPU kernels.
struct SerialFor {
  template <typename Fn>
  void operator()(int64_t units, int64_t, Fn&& fn) const {
    core::ScopedFlushDenormals flush;
    if (units > 0) fn(0, units);
  }
};

ChannelView ViewAround(const py::array& a, int axis) {
  if (axis == -1) return core::PerTensorView(a.size());
  if (axis < -1 || axis >= a.ndim()) {
    throw py::value_error("axis " + std::to_string(axis) +
                          " is out of range for an input of rank " +
                          std::to_string(a.ndim()) + " (-1 means per tensor)");
  }
  ChannelView v{1, a.shape(axis), 1};
  for (int i = 0; i < axis; ++i) v.outer *= a.shape(i);
  for (int i = axis + 1; i < a.ndim(); ++i) v.inner *= a.shape(i);
  return v;
}

ChannelView LastAxisView(const py::array& a) {
  if (a.ndim() < 1) throw py::value_error("per-channel ops need an input of rank >= 1");
  return ViewAround(a, static_cast<int>(a.ndim()) - 1);
}

void CheckRangeSize(const py::array& range, int64_t depth, const char* name) {
  if (range.size() != depth) {
    throw py::value_error(std::string(name) + " has " + std::to_string(range.size()) +
                          " values, expected " + std::to_string(depth));
  }
}

void CheckSameShape(const py::array& a, const py::array& b) {
  bool same = a.ndim() == b.ndim();
  for (int i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same) throw py::value_error("gradients and input must have the same shape");
}

bool UseCuda(const std::string& device) {
  if (device == "cpu") return false;
  if (device == "cuda") {
#ifdef TF_QDQ_WITH_CUDA
    return true;
#else
    throw py::value_error("tf_qdq.core was built without CUDA");
#endif
  }
  throw py::value_error("device must be 'cpu' or 'cuda', got '" + device + "'");
}

template <typename T>
std::vector<unsigned char> CpuWorkspace(size_t bytes) {
  return std::vector<unsigned char>(bytes > 0 ? bytes : 1);
}

// ---- QuantizeAndDequantizeV4 ---------------------------------------------------

template <typename T>
Array<T> QdqV4(Array<T> input, Array<T> input_min, Array<T> input_max, bool signed_input,
               int num_bits, bool range_given, const std::string& round_mode,
               bool narrow_range, int axis, const std::string& device) {
  if (!(num_bits > 0 && num_bits < (signed_input ? 62 : 63))) {
    throw py::value_error("num_bits is out of range: " + std::to_string(num_bits));
  }
  if (round_mode != "HALF_TO_EVEN" && round_mode != "HALF_UP") {
    throw py::value_error("round_mode must be 'HALF_TO_EVEN' or 'HALF_UP'");
  }
  const ChannelView view = ViewAround(input, axis);
  if (range_given) {
    CheckRangeSize(input_min, view.depth, "input_min");
    CheckRangeSize(input_max, view.depth, "input_max");
  }
  Array<T> output = EmptyLike<T>(input);
  core::QdqForwardArgs<T> args;
  args.input = DataOf<T>(input);
  args.output = MutableDataOf<T>(output);
  args.view = view;
  args.bounds = core::ComputeQdqBounds(signed_input, num_bits, narrow_range);
  args.round_mode = round_mode == "HALF_UP" ? core::RoundMode::kHalfUp
                                            : core::RoundMode::kHalfToEven;
  args.range_given = range_given;
  args.input_min = range_given ? DataOf<T>(input_min) : nullptr;
  args.input_max = range_given ? DataOf<T>(input_max) : nullptr;
  args.check_range_order = range_given && axis == -1;
  if (range_given && axis == -1 &&
      !(core::ToCompute(args.input_min[0]) <= core::ToCompute(args.input_max[0]))) {
    throw py::value_error("Invalid range: input_min > input_max");
  }
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::QdqForward(args);
#endif
    return output;
  }
  auto ws_bytes = core::QdqForwardWorkspaceBytes<T>(view, range_given);
  auto buffer = CpuWorkspace<T>(ws_bytes);
  core::Workspace ws(buffer.data(), ws_bytes);
  core::QdqForwardCpu(args, ws, SerialFor());
  return output;
}

template <typename T>
py::tuple QdqV4Grad(Array<T> gradients, Array<T> input, Array<T> input_min,
                    Array<T> input_max, int axis, const std::string& device) {
  CheckSameShape(gradients, input);
  const ChannelView view = ViewAround(input, axis);
  CheckRangeSize(input_min, view.depth, "input_min");
  CheckRangeSize(input_max, view.depth, "input_max");
  Array<T> backprop = EmptyLike<T>(input);
  Array<T> min_backprop = EmptyLike<T>(input_min);
  Array<T> max_backprop = EmptyLike<T>(input_min);
  core::QdqGradientArgs<T> args;
  args.gradients = DataOf<T>(gradients);
  args.input = DataOf<T>(input);
  args.input_backprop = MutableDataOf<T>(backprop);
  args.view = view;
  args.input_min = DataOf<T>(input_min);
  args.input_max = DataOf<T>(input_max);
  args.input_min_backprop = MutableDataOf<T>(min_backprop);
  args.input_max_backprop = MutableDataOf<T>(max_backprop);
  args.range_size = input_min.size();
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::QdqGradient(args);
#endif
  } else {
    auto ws_bytes = core::QdqGradientWorkspaceBytes<T>(view);
    auto buffer = CpuWorkspace<T>(ws_bytes);
    core::Workspace ws(buffer.data(), ws_bytes);
    core::QdqGradientCpu(args, ws, SerialFor());
  }
  return py::make_tuple(backprop, min_backprop, max_backprop);
}

// ---- FakeQuant -------------------------------------------------------------------

core::FakeQuantBounds FakeQuantBoundsOrThrow(int num_bits, bool narrow_range) {
  if (num_bits < 2 || num_bits > 16) {
    throw py::value_error("num_bits must be between 2 and 16, inclusive");
  }
  return core::ComputeFakeQuantBounds(num_bits, narrow_range);
}

template <core::GridStep kStep, typename T>
Array<T> FakeQuantForward(Array<T> inputs, ChannelView view, core::RangeSource<T> range,
                          int num_bits, bool narrow_range, bool zero_range_outputs_zero,
                          const std::string& device) {
  Array<T> outputs = EmptyLike<T>(inputs);
  core::FakeQuantArgs<T> args;
  args.input = DataOf<T>(inputs);
  args.output = MutableDataOf<T>(outputs);
  args.view = view;
  args.bounds = FakeQuantBoundsOrThrow(num_bits, narrow_range);
  args.range = range;
  args.zero_range_outputs_zero = zero_range_outputs_zero;
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::FakeQuantForward<kStep>(args);
#endif
    return outputs;
  }
  auto ws_bytes = core::FakeQuantWorkspaceBytes<T>(view);
  auto buffer = CpuWorkspace<T>(ws_bytes);
  core::Workspace ws(buffer.data(), ws_bytes);
  core::FakeQuantForwardCpu<kStep>(args, ws, SerialFor());
  return outputs;
}

template <typename T>
py::object FakeQuantGradient(Array<T> gradients, Array<T> inputs, ChannelView view,
                             core::RangeSource<T> range, py::ssize_t range_size,
                             bool with_sums, int num_bits, bool narrow_range,
                             const std::string& device) {
  CheckSameShape(gradients, inputs);
  Array<T> wrt_input = EmptyLike<T>(inputs);
  std::vector<py::ssize_t> range_shape;
  if (view.depth != 1 || view.outer != 1) range_shape.push_back(range_size);
  Array<T> wrt_min(range_shape), wrt_max(range_shape);
  core::FakeQuantGradientArgs<T> args;
  args.gradients = DataOf<T>(gradients);
  args.input = DataOf<T>(inputs);
  args.wrt_input = MutableDataOf<T>(wrt_input);
  args.wrt_min = with_sums ? MutableDataOf<T>(wrt_min) : nullptr;
  args.wrt_max = with_sums ? MutableDataOf<T>(wrt_max) : nullptr;
  args.view = view;
  args.bounds = FakeQuantBoundsOrThrow(num_bits, narrow_range);
  args.range = range;
  args.zero_range_passes_through = with_sums;  // Vars/PerChannel, not Args
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::FakeQuantGradient(args);
#endif
  } else {
    auto ws_bytes = core::FakeQuantGradientWorkspaceBytes<T>(view, with_sums);
    auto buffer = CpuWorkspace<T>(ws_bytes);
    core::Workspace ws(buffer.data(), ws_bytes);
    core::FakeQuantGradientCpu(args, ws, SerialFor());
  }
  if (!with_sums) return std::move(wrt_input);
  return py::make_tuple(wrt_input, wrt_min, wrt_max);
}

template <typename T>
core::RangeSource<T> AttrRange(float min, float max) {
  if (!(min < max)) throw py::value_error("min has to be smaller than max");
  using C = core::ComputeType<T>;
  return {nullptr, nullptr, static_cast<C>(min), static_cast<C>(max)};
}

template <typename T>
core::RangeSource<T> TensorRange(const Array<T>& min, const Array<T>& max, int64_t depth) {
  CheckRangeSize(min, depth, "min");
  CheckRangeSize(max, depth, "max");
  return {DataOf<T>(min), DataOf<T>(max), 0, 0};
}

template <typename T>
void DefineOps(py::module_& m, const std::string& suffix) {
  using core::GridStep;
  m.def(("quantize_and_dequantize_v4_" + suffix).c_str(), &QdqV4<T>, py::arg("input"), py::arg("input_min"),
        py::arg("input_max"), py::arg("signed_input") = true, py::arg("num_bits") = 8,
        py::arg("range_given") = false, py::arg("round_mode") = "HALF_TO_EVEN",
        py::arg("narrow_range") = false, py::arg("axis") = -1, py::arg("device") = "cpu");
  m.def(("quantize_and_dequantize_v4_grad_" + suffix).c_str(), &QdqV4Grad<T>, py::arg("gradients"),
        py::arg("input"), py::arg("input_min"), py::arg("input_max"), py::arg("axis") = -1,
        py::arg("device") = "cpu");
  m.def(("fake_quant_with_min_max_args_" + suffix).c_str(),
      [](Array<T> inputs, float min, float max, int num_bits, bool narrow_range,
         const std::string& device) {
        return FakeQuantForward<GridStep::kMultiplyByInverse, T>(
            inputs, core::PerTensorView(inputs.size()), AttrRange<T>(min, max), num_bits,
            narrow_range, false, device);
      },
      py::arg("inputs"), py::arg("min") = -6.0f, py::arg("max") = 6.0f,
      py::arg("num_bits") = 8, py::arg("narrow_range") = false, py::arg("device") = "cpu");
  m.def(("fake_quant_with_min_max_args_gradient_" + suffix).c_str(),
      [](Array<T> gradients, Array<T> inputs, float min, float max, int num_bits,
         bool narrow_range, const std::string& device) {
        return FakeQuantGradient<T>(gradients, inputs, core::PerTensorView(inputs.size()),
                                    AttrRange<T>(min, max), 1, false, num_bits,
                                    narrow_range, device);
      },
      py::arg("gradients"), py::arg("inputs"), py::arg("min") = -6.0f,
      py::arg("max") = 6.0f, py::arg("num_bits") = 8, py::arg("narrow_range") = false,
      py::arg("device") = "cpu");
  m.def(("fake_quant_with_min_max_vars_" + suffix).c_str(),
      [](Array<T> inputs, Array<T> min, Array<T> max, int num_bits, bool narrow_range,
         const std::string& device) {
        return FakeQuantForward<GridStep::kDivideByScale, T>(
            inputs, core::PerTensorView(inputs.size()), TensorRange<T>(min, max, 1),
            num_bits, narrow_range, true, device);
      },
      py::arg("inputs"), py::arg("min"), py::arg("max"), py::arg("num_bits") = 8,
      py::arg("narrow_range") = false, py::arg("device") = "cpu");
  m.def(("fake_quant_with_min_max_vars_gradient_" + suffix).c_str(),
      [](Array<T> gradients, Array<T> inputs, Array<T> min, Array<T> max, int num_bits,
         bool narrow_range, const std::string& device) {
        return FakeQuantGradient<T>(gradients, inputs, core::PerTensorView(inputs.size()),
                                    TensorRange<T>(min, max, 1), 1, true, num_bits,
                                    narrow_range, device);
      },
      py::arg("gradients"), py::arg("inputs"), py::arg("min"), py::arg("max"),
      py::arg("num_bits") = 8, py::arg("narrow_range") = false, py::arg("device") = "cpu");
  m.def(("fake_quant_with_min_max_vars_per_channel_" + suffix).c_str(),
      [](Array<T> inputs, Array<T> min, Array<T> max, int num_bits, bool narrow_range,
         const std::string& device) {
        const ChannelView view = LastAxisView(inputs);
        return FakeQuantForward<GridStep::kMultiplyByInverse, T>(
            inputs, view, TensorRange<T>(min, max, view.depth), num_bits, narrow_range,
            true, device);
      },
      py::arg("inputs"), py::arg("min"), py::arg("max"), py::arg("num_bits") = 8,
      py::arg("narrow_range") = false, py::arg("device") = "cpu");
  m.def(("fake_quant_with_min_max_vars_per_channel_gradient_" + suffix).c_str(),
      [](Array<T> gradients, Array<T> inputs, Array<T> min, Array<T> max, int num_bits,
         bool narrow_range, const std::string& device) {
        const ChannelView view = LastAxisView(inputs);
        return FakeQuantGradient<T>(gradients, inputs, view,
                                    TensorRange<T>(min, max, view.depth), view.depth, true,
                                    num_bits, narrow_range, device);
      },
      py::arg("gradients"), py::arg("inputs"), py::arg("min"), py::arg("max"),
      py::arg("num_bits") = 8, py::arg("narrow_range") = false, py::arg("device") = "cpu");
}

}  // namespace
}  // namespace tf_qdq

PYBIND11_MODULE(_core, m) {
  m.doc() =
      "tf-qdq's framework-free kernels, one entry point per dtype (name_float16, "
      "name_float32, name_float64; float16 arrays are passed as their uint16 bits). "
      "Use tf_qdq.core, which dispatches on the arrays' dtype.";
  tf_qdq::DefineOps<float>(m, "float32");
  tf_qdq::DefineOps<double>(m, "float64");
  tf_qdq::DefineOps<tf_qdq::core::Half>(m, "float16");
  // cc/core/layout.h's canonical order of the FakeQuant min/max backprop sums,
  // which the XLA lowering (tf_qdq/_xla_sums.py) follows with TF ops.
  m.attr("SUM_FLAT_CHUNK") = py::int_(tf_qdq::core::kFlatChunk);
  m.attr("SUM_FLAT_LANES") = py::int_(tf_qdq::core::kFlatLanes);
  m.attr("SUM_ROW_CHUNK") = py::int_(tf_qdq::core::kRowChunk);
  m.attr("SUM_COMBINE_LANES") = py::int_(tf_qdq::core::kCombineLanes);
#ifdef TF_QDQ_WITH_CUDA
  m.def(
      "cuda_benchmark",
      [](const std::string& op, int64_t n, int64_t channels, int reps) {
        const auto r = tf_qdq::cuda_bridge::Benchmark(op, n, channels, reps);
        return py::dict(py::arg("op_ms") = r.op_ms, py::arg("copy_ms") = r.copy_ms,
                        py::arg("op_bytes") = r.op_bytes);
      },
      py::arg("op"), py::arg("n"), py::arg("channels") = 1, py::arg("reps") = 20,
      "Median kernel time of `op` on device-resident float32 data beside a "
      "device-to-device copy of the same bytes, timed with CUDA events.");
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
