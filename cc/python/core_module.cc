// tf_qdq.core: the framework-free kernels on NumPy arrays, without TensorFlow.
//
// The same functions as the TF ops, with the same argument names, for
// float16, float32 and float64 arrays. `device="cuda"` runs the CUDA kernels
// when the module was built with CUDA (TF_QDQ_WITH_CUDA; see CMakeLists.txt):
// that is how the GPU kernels are tested on a machine without TensorFlow.
//
// Validation is each op's contract (cc/core/contract), the same checks and
// messages as the TF kernels: a failed check raises ValueError (no aborts).
// The module also exposes the contracts themselves (check_*), for the XLA
// lowering's trace-time checks (contract_bindings.cc).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cc/core/contract/fake_quant.h"
#include "cc/core/contract/qdq.h"
#include "cc/core/cpu/fake_quant.h"
#include "cc/core/cpu/fake_quant_gradient.h"
#include "cc/core/cpu/qdq.h"
#include "cc/core/layout.h"
#include "cc/core/op_args.h"
#include "cc/python/contract_bindings.h"

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

static_assert(sizeof(py::ssize_t) == sizeof(int64_t), "NumPy shapes as int64 dims");

// The shape of op input `operand`, as the contracts see it.
core::ShapeView ShapeOf(const py::array& a, int operand) {
  return {operand, static_cast<int>(a.ndim()), reinterpret_cast<const int64_t*>(a.shape())};
}

void ThrowIfFailed(const core::Checker& check) {
  if (!check.ok()) throw py::value_error(check.error());
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

std::vector<unsigned char> CpuWorkspace(size_t bytes) {
  return std::vector<unsigned char>(bytes > 0 ? bytes : 1);
}

// ---- QuantizeAndDequantizeV4 ---------------------------------------------------

template <typename T>
Array<T> QdqV4(Array<T> input, Array<T> input_min, Array<T> input_max, bool signed_input,
               int num_bits, bool range_given, const std::string& round_mode,
               bool narrow_range, int axis, const std::string& device) {
  core::QdqAttrs attrs{signed_input, num_bits, range_given, core::RoundMode::kHalfToEven,
                       narrow_range, axis};
  const core::ShapeView input_shape = ShapeOf(input, 0);
  core::Checker check;
  core::CheckQdqAttrs(check, round_mode, &attrs);
  core::CheckQdqForwardInputs(check, attrs, input_shape, ShapeOf(input_min, 1),
                              ShapeOf(input_max, 2));
  if (check.ok() && core::QdqChecksRangeOrder(attrs)) {  // host arrays: always readable
    core::CheckQdqRangeOrder(check, core::ToCompute(DataOf<T>(input_min)[0]),
                             core::ToCompute(DataOf<T>(input_max)[0]));
  }
  ThrowIfFailed(check);
  const ChannelView view = core::ViewAroundAxis(input_shape, axis);
  Array<T> output = EmptyLike<T>(input);
  const auto args = core::MakeQdqForwardArgs<T>(attrs, view, DataOf<T>(input),
                                                MutableDataOf<T>(output), DataOf<T>(input_min),
                                                DataOf<T>(input_max));
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::LaunchQdqForward(args);
#endif
    return output;
  }
  auto ws_bytes = core::QdqForwardWorkspaceBytes<T>(view, range_given);
  auto buffer = CpuWorkspace(ws_bytes);
  core::Workspace ws(buffer.data(), ws_bytes);
  core::QdqForwardCpu(args, ws, SerialFor());
  return output;
}

template <typename T>
py::tuple QdqV4Grad(Array<T> gradients, Array<T> input, Array<T> input_min,
                    Array<T> input_max, int axis, const std::string& device) {
  core::Checker check;
  core::CheckQdqGradientInputs(check, axis, ShapeOf(gradients, 0), ShapeOf(input, 1),
                               ShapeOf(input_min, 2), ShapeOf(input_max, 3));
  ThrowIfFailed(check);
  const ChannelView view = core::ViewAroundAxis(ShapeOf(input, 1), axis);
  Array<T> backprop = EmptyLike<T>(input);
  Array<T> min_backprop = EmptyLike<T>(input_min);
  Array<T> max_backprop = EmptyLike<T>(input_min);
  const auto args = core::MakeQdqGradientArgs<T>(
      view, DataOf<T>(gradients), DataOf<T>(input), DataOf<T>(input_min),
      DataOf<T>(input_max), input_min.size(), MutableDataOf<T>(backprop),
      MutableDataOf<T>(min_backprop), MutableDataOf<T>(max_backprop));
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::LaunchQdqGradient(args);
#endif
  } else {
    auto ws_bytes = core::QdqGradientWorkspaceBytes<T>(view);
    auto buffer = CpuWorkspace(ws_bytes);
    core::Workspace ws(buffer.data(), ws_bytes);
    core::QdqGradientCpu(args, ws, SerialFor());
  }
  return py::make_tuple(backprop, min_backprop, max_backprop);
}

// ---- FakeQuant -------------------------------------------------------------------

template <core::FakeQuantOp kOp, typename T>
Array<T> FakeQuantForwardNumpy(Array<T> inputs, core::RangeSource<T> range, int num_bits,
                               bool narrow_range, const std::string& device) {
  Array<T> outputs = EmptyLike<T>(inputs);
  const ChannelView view = core::FakeQuantView(kOp, ShapeOf(inputs, 0));
  const auto args = core::MakeFakeQuantArgs<T>(kOp, num_bits, narrow_range, view, range,
                                               DataOf<T>(inputs), MutableDataOf<T>(outputs));
  constexpr core::GridStep kStep = core::GridStepOf(kOp);
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::LaunchFakeQuantForward<kStep>(args);
#endif
    return outputs;
  }
  auto ws_bytes = core::FakeQuantWorkspaceBytes<T>(view);
  auto buffer = CpuWorkspace(ws_bytes);
  core::Workspace ws(buffer.data(), ws_bytes);
  core::FakeQuantForwardCpu<kStep>(args, ws, SerialFor());
  return outputs;
}

// Args: the input backprop. Vars/PerChannel: (wrt_input, wrt_min, wrt_max),
// the range backprops of the ranges' shape (PerChannel: [depth]).
template <core::FakeQuantOp kOp, typename T>
py::object FakeQuantGradientNumpy(Array<T> gradients, Array<T> inputs,
                                  core::RangeSource<T> range, int num_bits, bool narrow_range,
                                  const std::string& device) {
  const ChannelView view = core::FakeQuantView(kOp, ShapeOf(inputs, 1));
  Array<T> wrt_input = EmptyLike<T>(inputs);
  std::vector<py::ssize_t> range_shape;
  if (kOp == core::FakeQuantOp::kVarsPerChannel) range_shape.push_back(view.depth);
  Array<T> wrt_min(range_shape), wrt_max(range_shape);
  const auto args = core::MakeFakeQuantGradientArgs<T>(
      kOp, num_bits, narrow_range, view, range, DataOf<T>(gradients), DataOf<T>(inputs),
      MutableDataOf<T>(wrt_input), MutableDataOf<T>(wrt_min), MutableDataOf<T>(wrt_max));
  if (UseCuda(device)) {
#ifdef TF_QDQ_WITH_CUDA
    cuda_bridge::LaunchFakeQuantGradient(args);
#endif
  } else {
    auto ws_bytes = core::FakeQuantGradientWorkspaceBytes<T>(view, args.wrt_min != nullptr);
    auto buffer = CpuWorkspace(ws_bytes);
    core::Workspace ws(buffer.data(), ws_bytes);
    core::FakeQuantGradientCpu(args, ws, SerialFor());
  }
  if (!core::HasRangeGradients(kOp)) return std::move(wrt_input);
  return py::make_tuple(wrt_input, wrt_min, wrt_max);
}

// The Args ops: min/max are attrs.
template <typename T>
Array<T> FakeQuantArgsNumpy(Array<T> inputs, float min, float max, int num_bits,
                            bool narrow_range, const std::string& device) {
  core::Checker check;
  core::CheckFakeQuantArgsAttrs(check, min, max, num_bits);
  ThrowIfFailed(check);
  return FakeQuantForwardNumpy<core::FakeQuantOp::kArgs, T>(
      inputs, core::AttrRange<T>(min, max), num_bits, narrow_range, device);
}

template <typename T>
py::object FakeQuantArgsGradientNumpy(Array<T> gradients, Array<T> inputs, float min, float max,
                                      int num_bits, bool narrow_range,
                                      const std::string& device) {
  constexpr auto kOp = core::FakeQuantOp::kArgs;
  core::Checker check;
  core::CheckFakeQuantArgsAttrs(check, min, max, num_bits);
  core::CheckFakeQuantGradientInputs(check, kOp, ShapeOf(gradients, 0), ShapeOf(inputs, 1),
                                     ShapeOf(inputs, 1), ShapeOf(inputs, 1), "tf_qdq.core",
                                     "FakeQuantWithMinMaxArgsGradient");
  ThrowIfFailed(check);
  return FakeQuantGradientNumpy<kOp, T>(gradients, inputs, core::AttrRange<T>(min, max),
                                        num_bits, narrow_range, device);
}

// The Vars and VarsPerChannel ops: min/max are arrays.
template <core::FakeQuantOp kOp, typename T>
Array<T> FakeQuantVarsNumpy(Array<T> inputs, Array<T> min, Array<T> max, int num_bits,
                            bool narrow_range, const std::string& device) {
  core::Checker check;
  core::CheckFakeQuantBits(check, num_bits);
  core::CheckFakeQuantForwardInputs(check, kOp, ShapeOf(inputs, 0), ShapeOf(min, 1),
                                    ShapeOf(max, 2));
  ThrowIfFailed(check);
  return FakeQuantForwardNumpy<kOp, T>(
      inputs, core::TensorRange<T>(DataOf<T>(min), DataOf<T>(max)), num_bits, narrow_range,
      device);
}

template <core::FakeQuantOp kOp, typename T>
py::object FakeQuantVarsGradientNumpy(Array<T> gradients, Array<T> inputs, Array<T> min,
                                      Array<T> max, int num_bits, bool narrow_range,
                                      const std::string& device) {
  core::Checker check;
  core::CheckFakeQuantBits(check, num_bits);
  core::CheckFakeQuantGradientInputs(check, kOp, ShapeOf(gradients, 0), ShapeOf(inputs, 1),
                                     ShapeOf(min, 2), ShapeOf(max, 3), "tf_qdq.core", "");
  ThrowIfFailed(check);
  return FakeQuantGradientNumpy<kOp, T>(
      gradients, inputs, core::TensorRange<T>(DataOf<T>(min), DataOf<T>(max)), num_bits,
      narrow_range, device);
}

// A Vars or VarsPerChannel op and its gradient, `op`_`suffix` and
// `op`_gradient_`suffix`.
template <core::FakeQuantOp kOp, typename T>
void DefineVarsOps(py::module_& m, const std::string& op, const std::string& suffix) {
  m.def((op + "_" + suffix).c_str(), &FakeQuantVarsNumpy<kOp, T>, py::arg("inputs"),
        py::arg("min"), py::arg("max"), py::arg("num_bits") = 8,
        py::arg("narrow_range") = false, py::arg("device") = "cpu");
  m.def((op + "_gradient_" + suffix).c_str(), &FakeQuantVarsGradientNumpy<kOp, T>,
        py::arg("gradients"), py::arg("inputs"), py::arg("min"), py::arg("max"),
        py::arg("num_bits") = 8, py::arg("narrow_range") = false, py::arg("device") = "cpu");
}

template <typename T>
void DefineOps(py::module_& m, const std::string& suffix) {
  using core::FakeQuantOp;
  const auto name = [&suffix](const char* op) { return std::string(op) + "_" + suffix; };
  m.def(name("quantize_and_dequantize_v4").c_str(), &QdqV4<T>, py::arg("input"),
        py::arg("input_min"), py::arg("input_max"), py::arg("signed_input") = true,
        py::arg("num_bits") = 8, py::arg("range_given") = false,
        py::arg("round_mode") = "HALF_TO_EVEN", py::arg("narrow_range") = false,
        py::arg("axis") = -1, py::arg("device") = "cpu");
  m.def(name("quantize_and_dequantize_v4_grad").c_str(), &QdqV4Grad<T>, py::arg("gradients"),
        py::arg("input"), py::arg("input_min"), py::arg("input_max"), py::arg("axis") = -1,
        py::arg("device") = "cpu");
  m.def(name("fake_quant_with_min_max_args").c_str(), &FakeQuantArgsNumpy<T>,
        py::arg("inputs"), py::arg("min") = -6.0f, py::arg("max") = 6.0f,
        py::arg("num_bits") = 8, py::arg("narrow_range") = false, py::arg("device") = "cpu");
  m.def(name("fake_quant_with_min_max_args_gradient").c_str(), &FakeQuantArgsGradientNumpy<T>,
        py::arg("gradients"), py::arg("inputs"), py::arg("min") = -6.0f,
        py::arg("max") = 6.0f, py::arg("num_bits") = 8, py::arg("narrow_range") = false,
        py::arg("device") = "cpu");
  DefineVarsOps<FakeQuantOp::kVars, T>(m, "fake_quant_with_min_max_vars", suffix);
  DefineVarsOps<FakeQuantOp::kVarsPerChannel, T>(m, "fake_quant_with_min_max_vars_per_channel",
                                                 suffix);
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
  tf_qdq::DefineContracts(m);
  // cc/core/layout.h's canonical order of the FakeQuant min/max backprop sums,
  // which the XLA lowering (tf_qdq/_xla/sums.py) follows with TF ops.
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
