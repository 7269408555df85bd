"""What the tf_qdq.keras modules share: the package their layers are
registered under, and the checks of the arguments several layers take (one
check, one message, wherever the argument appears)."""
import math

# Every layer is registered as "tf_qdq>ClassName": a .keras file finds it by
# that name, whichever module defines the class (files saved before the
# package moved into subpackages load too).
PACKAGE = "tf_qdq"


def check_num_bits(owner, num_bits, low=2, high=16, hint=""):
  """`num_bits` as an int, or ValueError naming `owner` (the layer or the
  function) and the bounds; `hint` says what the bounds come from or what
  to use instead."""
  try:
    bits = int(num_bits)
  except (TypeError, ValueError):
    bits = None
  if bits is None or bits != num_bits or not low <= bits <= high:
    raise ValueError(f"{owner}: num_bits must be an integer in [{low}, "
                     f"{high}]{hint}, got {num_bits!r}.")
  return bits


def check_initial_range(owner, init_min, init_max):
  """A finite range with init_min <= init_max (an infinite bound would make
  every quantized value NaN or +-inf)."""
  lo, hi = float(init_min), float(init_max)
  if not (math.isfinite(lo) and math.isfinite(hi)):
    raise ValueError(f"{owner}: init_min and init_max must be finite, got "
                     f"[{init_min}, {init_max}].")
  if not lo <= hi:
    raise ValueError(f"{owner}: init_min {init_min} > init_max {init_max}.")


def check_momentum(owner, momentum):
  if not 0.0 <= float(momentum) <= 1.0:
    raise ValueError(f"{owner}: momentum must be in [0, 1], got {momentum}.")
  return float(momentum)
