// tf_qdq._core's check_* functions: the op contracts (cc/core/contract) on the
// shapes the XLA lowering knows at trace time (tf_qdq/_xla/checks.py). Each
// returns the first check those shapes fail, and the checks they cannot
// decide, which the lowering makes when XLA compiles.
#include "cc/python/contract_bindings.h"

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cc/core/contract/fake_quant.h"
#include "cc/core/contract/qdq.h"

namespace py = pybind11;

namespace tf_qdq {
namespace {

// Shapes as the lowering knows them at trace time: None (unknown rank) or a
// list of dims, each an int or None (unknown).
class TraceShapes {
 public:
  explicit TraceShapes(const py::list& shapes) {
    dims_.resize(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (shapes[i].is_none()) {
        views_.push_back({static_cast<int>(i), core::kUnknownRank, nullptr});
        continue;
      }
      for (const py::handle d : py::list(shapes[i])) {
        dims_[i].push_back(d.is_none() ? core::kUnknownDim : d.cast<int64_t>());
      }
      views_.push_back({static_cast<int>(i), static_cast<int>(dims_[i].size()), dims_[i].data()});
    }
  }
  const core::ShapeView& operator[](size_t i) const { return views_.at(i); }

 private:
  std::vector<std::vector<int64_t>> dims_;
  std::vector<core::ShapeView> views_;
};

// (error message or None, [(kind, operand, other, value, message), ...]): the
// first check the known shapes fail, and the checks they cannot decide.
py::tuple TraceResult(const core::Checker& check) {
  py::list deferred;
  for (const core::DeferredCheck& d : check.deferred()) {
    deferred.append(py::make_tuple(static_cast<int>(d.kind), d.operand, d.other, d.value,
                                   d.message));
  }
  return py::make_tuple(check.ok() ? py::object(py::none()) : py::object(py::str(check.error())),
                        deferred);
}

}  // namespace

void DefineContracts(py::module_& m) {
  m.def("check_quantize_and_dequantize_v4",
        [](const py::list& shapes, bool signed_input, int num_bits, bool range_given,
           const std::string& round_mode, bool narrow_range, int axis) {
          const TraceShapes s(shapes);
          core::QdqAttrs attrs{signed_input, num_bits, range_given,
                               core::RoundMode::kHalfToEven, narrow_range, axis};
          core::Checker check(/*trace=*/true);
          core::CheckQdqAttrs(check, round_mode, &attrs);
          core::CheckQdqForwardInputs(check, attrs, s[0], s[1], s[2]);
          return TraceResult(check);
        },
        py::arg("shapes"), py::arg("signed_input"), py::arg("num_bits"),
        py::arg("range_given"), py::arg("round_mode"), py::arg("narrow_range"),
        py::arg("axis"),
        "QuantizeAndDequantizeV4's contract on [input, input_min, input_max] shapes.");
  m.def("check_quantize_and_dequantize_v4_grad",
        [](const py::list& shapes, int axis) {
          const TraceShapes s(shapes);
          core::Checker check(/*trace=*/true);
          core::CheckQdqGradientInputs(check, axis, s[0], s[1], s[2], s[3]);
          return TraceResult(check);
        },
        py::arg("shapes"), py::arg("axis"),
        "QuantizeAndDequantizeV4Grad's contract on [gradients, input, input_min, "
        "input_max] shapes.");
  m.def("check_fake_quant",
        [](const std::string& op, bool gradient, const py::list& shapes, int num_bits,
           float min, float max, const std::string& node_name) {
          const TraceShapes s(shapes);
          core::FakeQuantOp kind;
          if (op == "FakeQuantWithMinMaxArgs") {
            kind = core::FakeQuantOp::kArgs;
          } else if (op == "FakeQuantWithMinMaxVars") {
            kind = core::FakeQuantOp::kVars;
          } else if (op == "FakeQuantWithMinMaxVarsPerChannel") {
            kind = core::FakeQuantOp::kVarsPerChannel;
          } else {
            throw py::value_error("unknown FakeQuant op '" + op + "'");
          }
          core::Checker check(/*trace=*/true);
          core::CheckFakeQuantAttrs(check, kind, min, max, num_bits);
          // Operands: [inputs, min, max], or [gradients, inputs, min, max].
          if (gradient) {
            const bool args = kind == core::FakeQuantOp::kArgs;
            core::CheckFakeQuantGradientInputs(check, kind, s[0], s[1], args ? s[1] : s[2],
                                               args ? s[1] : s[3], node_name,
                                               "TfQdq>" + op + "Gradient");
          } else if (kind != core::FakeQuantOp::kArgs) {
            core::CheckFakeQuantForwardInputs(check, kind, s[0], s[1], s[2]);
          }
          return TraceResult(check);
        },
        py::arg("op"), py::arg("gradient"), py::arg("shapes"), py::arg("num_bits"),
        py::arg("min") = 0.0f, py::arg("max") = 0.0f, py::arg("node_name") = "",
        "The contract of a FakeQuantWithMinMax{Args,Vars,VarsPerChannel} op (or its "
        "gradient) on its input shapes; min/max are Args' attrs.");
  m.attr("DEFERRED_RANK") = py::int_(static_cast<int>(core::DeferredCheck::kRank));
  m.attr("DEFERRED_AXIS_IN_RANK") = py::int_(static_cast<int>(core::DeferredCheck::kAxisInRank));
  m.attr("DEFERRED_SIZE") = py::int_(static_cast<int>(core::DeferredCheck::kSize));
  m.attr("DEFERRED_SAME_SHAPE") = py::int_(static_cast<int>(core::DeferredCheck::kSameShape));
}

}  // namespace tf_qdq
