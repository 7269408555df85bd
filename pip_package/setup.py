"""Wheel metadata for tf-qdq. Run by build_pip_pkg.sh from a staging directory."""
import os

from setuptools import setup
from setuptools.dist import Distribution

# The op library must match TensorFlow's ABI: pin the series it was built for.
TF_VERSION = os.environ.get("TF_QDQ_TF_VERSION", "2.21.0")
TF_SERIES = ".".join(TF_VERSION.split(".")[:2])


class BinaryDistribution(Distribution):
  """The wheel carries compiled libraries (the op library, and tf_qdq._core
  for one CPython), so it is tagged for this Python and platform."""

  def has_ext_modules(self):
    return True


setup(
    name="tf-qdq",
    version=os.environ.get("TF_QDQ_VERSION", "0.1.0"),
    description=("TensorFlow quantize-dequantize and fake-quant ops, "
                 "bit-exact with TF 2.21, for quantization-aware training"),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=["tf_qdq"],
    package_data={"tf_qdq": ["_tf_qdq_ops.so", "_core*.so"]},
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=[f"tensorflow=={TF_SERIES}.*"],
    distclass=BinaryDistribution,
    zip_safe=False,
)
