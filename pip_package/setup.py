"""The build-dependent part of tf-qdq's wheel metadata (the rest is in
pyproject.toml). Run through PEP 517 by build_pip_pkg.sh from a staging
directory."""
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
    version=os.environ.get("TF_QDQ_VERSION", "0.1.0"),
    install_requires=[f"tensorflow=={TF_SERIES}.*"],
    distclass=BinaryDistribution,
)
