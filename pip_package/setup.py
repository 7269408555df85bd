"""Wheel metadata for tf-qdq. Run by build_pip_pkg.sh from a staging directory."""
import os

from setuptools import setup
from setuptools.dist import Distribution

try:
  from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # newer setuptools ship it themselves
  from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel

# The op library must match TensorFlow's ABI: pin the series it was built for.
TF_VERSION = os.environ.get("TF_QDQ_TF_VERSION", "2.21.0")
TF_SERIES = ".".join(TF_VERSION.split(".")[:2])


class BinaryDistribution(Distribution):
  """The wheel carries a compiled library, so it is platform-specific."""

  def has_ext_modules(self):
    return True


class bdist_wheel(_bdist_wheel):  # pylint: disable=invalid-name
  """The .so talks to TensorFlow's C++ ABI only, not to CPython's: one wheel
  serves every Python that TensorFlow supports (tag py3-none-<platform>)."""

  def get_tag(self):
    _, _, platform = super().get_tag()
    return "py3", "none", platform


setup(
    name="tf-qdq",
    version=os.environ.get("TF_QDQ_VERSION", "0.1.0"),
    description=("TensorFlow quantize-dequantize and fake-quant ops, "
                 "bit-exact with TF 2.21, for quantization-aware training"),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=["tf_qdq"],
    package_data={"tf_qdq": ["_tf_qdq_ops.so"]},
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=[f"tensorflow=={TF_SERIES}.*"],
    distclass=BinaryDistribution,
    cmdclass={"bdist_wheel": bdist_wheel},
    zip_safe=False,
)
