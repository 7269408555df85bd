# tf-qdq developer entry points. On a fresh Debian 12 machine every target
# installs what it needs first (make setup): system toolchain, .venv, configure.
#   make demo    each op beside TF's built-in, then the QAT training demo
#   make test    build, package, install the wheel into .venv, run the tests
#   make test-src the tests on the source tree (no wheel; after make build)
#   make lint    ruff on the Python sources (pyproject.toml, tests/ruff.toml)
#   make wheel   dist/tf_qdq-*.whl
#   make bench   the benchmark suite (docs/benchmarks.md, qat_step.md, onnx_weights.md)
#   make zoo     keras.applications through quantize_model, export, LiteRT, onnxruntime (docs/zoo.md)
#   make cc-test the C++ tests, plain and under ASan+UBSan, and tf_qdq._core's tests under ASan+UBSan
#   make cc-fuzz the libFuzzer target on the core for CC_FUZZ_SECONDS (default 60)
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
BAZEL := tools/bazel.sh
# The op library of record has CPU and GPU kernels (one wheel for both kinds of
# machine); `make build BAZEL_CONFIG=` builds a CPU-only library faster.
BAZEL_CONFIG ?= --config=cuda
SETUP_STAMP := $(VENV)/.tf_qdq_setup_stamp
REQUIREMENTS := requirements-dev.txt $(wildcard requirements-demo.txt)
PYTEST_ARGS ?=

.PHONY: all setup build wheel install test test-src lint demo bench clean fuzz cc-test cc-fuzz zoo

all: wheel

# System packages (apt), the .venv (pip), then clang's CUDA toolkit directory from TF's
# wheel and PyPI (no CUDA toolkit needed; --check compiles a tiny kernel with it, so a
# broken toolchain fails here rather than inside Bazel). A CPU-only setup
# (BAZEL_CONFIG without --config=cuda) skips the CUDA toolchain.
$(SETUP_STAMP): $(REQUIREMENTS) tools/install_system_deps.sh tools/install_cuda_toolchain.sh
	bash tools/install_system_deps.sh
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q $(addprefix -r ,$(REQUIREMENTS))
ifneq (,$(findstring --config=cuda,$(BAZEL_CONFIG)))
	PYTHON_BIN_PATH=$(PYTHON) bash tools/install_cuda_toolchain.sh --check
else
	@echo "setup: BAZEL_CONFIG='$(BAZEL_CONFIG)' builds CPU kernels only; no CUDA toolchain installed."
endif
	touch $@

.tf_configure.bazelrc: $(SETUP_STAMP) configure.sh
	PYTHON_BIN_PATH=$(PYTHON) ./configure.sh

setup: $(SETUP_STAMP) .tf_configure.bazelrc

# The op library and tf_qdq._core (pybind11, for the .venv's Python), both by Bazel.
build: setup
	$(BAZEL) build $(BAZEL_CONFIG) //cc/tf:_tf_qdq_ops.so //cc/python:core_module
	PYTHON_BIN_PATH=$(PYTHON) tools/stage_library.sh

wheel: build
	$(BAZEL) build $(BAZEL_CONFIG) //pip_package:build_pip_pkg
	rm -f dist/tf_qdq-*.whl
	PYTHON_BIN_PATH=$(CURDIR)/$(PYTHON) bazel-bin/pip_package/build_pip_pkg dist

install: wheel
	$(PYTHON) -m pip install -q --force-reinstall --no-deps dist/tf_qdq-*.whl

# Runs from tests/ so that `import tf_qdq` finds the installed wheel, not the
# source tree.
test: install
	cd tests && ../$(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .

# The same tests against the source tree (tf_qdq/ with the staged op library):
# no wheel is built or installed, so it takes seconds to start after an edit.
test-src: build
	$(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests

lint: $(SETUP_STAMP)
	$(PYTHON) -m ruff check .

demo: install
	$(PYTHON) tools/demo_ops.py
	@if [ -f examples/qat_digits.py ]; then $(PYTHON) examples/qat_digits.py; fi

# The fuzz test (tests/ops/test_fuzz.py) with many more cases than CI's sample.
FUZZ_CASES ?= 2000
FUZZ_SEED ?= 13
fuzz: install
	cd tests && TF_QDQ_FUZZ_CASES=$(FUZZ_CASES) TF_QDQ_FUZZ_SEED=$(FUZZ_SEED) ../$(PYTHON) -m pytest -q -p no:cacheprovider ops/test_fuzz.py

# C++ tests of cc/core (cc/tests), plain and with --config=asan (AddressSanitizer +
# UndefinedBehaviorSanitizer), then tf_qdq._core built with both sanitizers under
# tests/core/test_core_cpu.py (tools/sanitizer_tests.sh). Needs the op library built.
CC_TEST_BAZEL_ARGS ?=
cc-test: build
	PYTHON_BIN_PATH=$(CURDIR)/$(PYTHON) tools/sanitizer_tests.sh test $(CC_TEST_BAZEL_ARGS)

# libFuzzer (clang-19, ASan + UBSan) on the core's entry points for CC_FUZZ_SECONDS;
# the corpus grows in build/fuzz_corpus/, findings land in build/fuzz_artifacts/.
CC_FUZZ_SECONDS ?= 60
cc-fuzz: setup
	PYTHON_BIN_PATH=$(CURDIR)/$(PYTHON) tools/sanitizer_tests.sh fuzz $(CC_FUZZ_SECONDS)

bench: install
	$(PYTHON) bench/run_benchmarks.py
	$(PYTHON) bench/qat_step.py
	$(PYTHON) bench/onnx_weights.py

# Each keras.applications family's smallest member through quantize_model,
# QAT, export and LiteRT/onnxruntime (tools/zoo.py: docs/zoo.md, zoo.json; one
# subprocess per family, up to 15 min each). tfmot 0.8.1's column
# (docs/zoo_tfmot.json) comes first from tools/zoo_tfmot.py, only where its own
# venv exists (never the project's .venv; tfmot needs Keras 2). Create it once:
#   python3 -m venv .venv-tfmot
#   .venv-tfmot/bin/pip install -r tools/zoo_tfmot_requirements.txt
# ZOO_ARGS go to tools/zoo.py, e.g. ZOO_ARGS="--models ResNet50,VGG16 --quick".
ZOO_ARGS ?=
zoo: install
	if [ -x .venv-tfmot/bin/python ]; then .venv-tfmot/bin/python tools/zoo_tfmot.py; fi
	$(PYTHON) tools/zoo.py $(ZOO_ARGS)

clean:
	$(BAZEL) clean
	rm -rf dist build tf_qdq/_tf_qdq_ops.so tf_qdq/_build_info.py tf_qdq/_core*.so
