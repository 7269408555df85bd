// The op contracts as tf_qdq._core functions (contract_bindings.cc).
#ifndef TF_QDQ_CC_PYTHON_CONTRACT_BINDINGS_H_
#define TF_QDQ_CC_PYTHON_CONTRACT_BINDINGS_H_

#include <pybind11/pybind11.h>

namespace tf_qdq {

void DefineContracts(pybind11::module_& m);

}  // namespace tf_qdq

#endif  // TF_QDQ_CC_PYTHON_CONTRACT_BINDINGS_H_
