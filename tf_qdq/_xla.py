"""The tf-qdq ops as compositions of TensorFlow built-in ops, for XLA.

The op library has no XLA kernels, so inside an XLA context (tf.function with
jit_compile=True, Keras' jit_compile, which Keras 3 turns on by default when a
GPU is present) every public function of tf_qdq.quantization builds the
composition below instead of the custom op. It reproduces the CPU kernels' bits
(cc/core/quantize_math.h is the ground truth, cited below as "math.h"):

* 16-bit types are computed in float32 and rounded once on store;
* left-preferring clamps are selects (`tf.where(b < a, b, a)`), never
  tf.minimum/tf.maximum, whose NaN and -0.0 behaviour differs;
* HALF_TO_EVEN is tf.math.round (XLA RoundNearestEven, = rint); HALF_UP and
  FakeQuant round with floor(y + 0.5); the FakeQuant zero point rounds half
  away from zero (std::round), written exactly with floor;
* Vars divides by the scale, Args and PerChannel multiply by its inverse;
* a range computed from the data skips NaNs, and a zero maximum (its sign
  decides the sign of zero outputs) is +0 when the data hold a +0;
* the FakeQuant min/max backprops are double sums in the kernels' canonical
  order (cc/core/layout.h), written as explicit adds, so they are bit-exact
  too, and rounded once to the storage type (round-to-odd for 16-bit types).

Four XLA rewrites would change the bits and are blocked:

* XLA:CPU lets LLVM contract a multiply followed by an add into an FMA (one
  rounding instead of two): on this machine 1.1% of `x * s + 0.5` differ.
  LLVM contracts only a multiply with a single use on x86, so every product
  that feeds an add gets a second use (`_separately_rounded`).
* The algebraic simplifier rewrites `A / constant` as `A * (1 / constant)`,
  `A / (B / C)` as `(A * C) / B` (which moves the FakeQuant zero point of
  [-1, 1] from 127.49999 to 127.5), reassociates `(A + C1) + C2` as
  `A + (C1 + C2)`, and folds constant ranges. The range inputs, the quotients
  that are divided again, every per-range quantity and every constant divisor
  go through an XlaOptimizationBarrier, which XLA cannot see through
  (`_opaque`); XLA removes the barriers after simplification, so they cost
  nothing at run time.
* It rewrites `g * convert(mask)` as `select(mask, g, 0)`, which loses the
  -0 of a negative gradient and the NaN of an infinite one outside the mask:
  masks are opaque too. And it folds `0 + A` into `A`, which turns a +0 sum of
  -0 terms into -0: the kernels' sums start from +0.0 and are never -0, so
  zero sums are set to +0.

What does not carry over: checks that depend on tensor values (QDQ's
"Invalid range: input_min > input_max") cannot raise inside XLA and are
skipped; checks of attributes and static shapes raise at trace time with the
kernels' messages. Verified on XLA:CPU (x86-64 with AVX2 and FMA); XLA:GPU
is unverified (NVPTX contracts multiplies with several uses too).
"""
import re

import warnings

import numpy as np
import tensorflow as tf

from tf_qdq._tf_internal import control_flow_util
from tf_qdq._tf_internal import gen_xla_ops as _gen_xla_ops
from tf_qdq.core import _flushed_float32

# cc/core/layout.h: canonical order of the FakeQuant min/max backprop sums.
_FLAT_CHUNK = 4096
_FLAT_LANES = 64
_ROW_CHUNK = 256
_COMBINE_LANES = 256

_SIXTEEN_BIT = (tf.float16, tf.bfloat16)
_FLOATS = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def in_xla_context():
  """True while building a graph that XLA will compile (tf.function with
  jit_compile=True, Keras jit_compile, or a function nested in one)."""
  if tf.executing_eagerly():
    return False
  inside = control_flow_util.GraphOrParentsInXlaContext(
      tf.compat.v1.get_default_graph())
  if inside:
    _warn_once_if_gpu()
  return inside


_GPU_WARNED = []


def _warn_once_if_gpu():
  """The compositions are verified bit-exact on XLA:CPU only: NVPTX may
  contract a multiply and an add into an FMA, which changes the last bit.
  Where a GPU is visible the cluster may well be compiled for it: say so,
  once per process, until XLA:GPU has been checked."""
  if _GPU_WARNED or not tf.config.list_logical_devices("GPU"):
    return
  _GPU_WARNED.append(True)
  warnings.warn(
      "tf_qdq: building the XLA lowering of tf_qdq ops with a GPU visible. "
      "Its bits are verified on XLA:CPU only; XLA:GPU may contract "
      "multiplies and adds into FMAs and change last bits. For bit-exact "
      "results on GPU, compile without XLA (jit_compile=False) so that the "
      "tf_qdq CUDA kernels run.", RuntimeWarning, stacklevel=4)


# ---- helpers -----------------------------------------------------------------

# Plain graph building: AutoGraph has nothing to convert here.
_no_autograph = tf.autograph.experimental.do_not_convert


def _invalid(message):
  return tf.errors.InvalidArgumentError(None, None, message)


def _compute_dtype(dtype):
  return tf.float32 if dtype in _SIXTEEN_BIT else dtype


def _to_compute(t):
  """t in its compute type. bfloat16 denormals become float32 denormals,
  which the kernels flush (DAZ: a zero of the same sign) and XLA does not:
  they are flushed here."""
  c = _compute_dtype(t.dtype)
  v = t if t.dtype == c else tf.cast(t, c)
  if t.dtype != tf.bfloat16:
    return v
  tiny = _const(np.finfo(np.float32).tiny, c)
  signed_zero = tf.where(_signbit(v), _const(-0.0, c), _const(0.0, c))
  return tf.where(tf.abs(v) < tiny, signed_zero, v)


def _const(value, dtype):
  """A constant of `dtype`, converted like C++ static_cast (int64 -> float
  rounds once)."""
  return tf.constant(np.asarray(value).astype(dtype.as_numpy_dtype), dtype)


def _opaque(*tensors):
  """The tensors, hidden from XLA's algebraic simplifier and constant folder.
  The barrier has no gradient: only quantities whose gradient is zero (masks,
  ranges that feed comparisons) or that custom gradients cover go through."""
  out = _gen_xla_ops.xla_optimization_barrier(
      [tf.stop_gradient(t) for t in tensors])
  return tuple(out) if len(tensors) > 1 else out[0]


def _separately_rounded(product, consumer):
  """consumer(product), with no FMA contraction of the product into it. The
  select gives the multiply a second use; a NaN product gives NaN either way."""
  return tf.where(tf.math.is_nan(product), product, consumer(product))


def _min_prefer_left(a, b):
  return tf.where(b < a, b, a)


def _max_prefer_left(a, b):
  return tf.where(a < b, b, a)


def _signbit(x):
  int_type = tf.int64 if x.dtype == tf.float64 else tf.int32
  return tf.bitcast(x, int_type) < 0


def _convert_inputs(op_name, *values):
  """Converts like the public wrappers: the first input keeps its own dtype,
  which is the op's T; other inputs that are not tensors take T."""
  first = tf.convert_to_tensor(values[0])
  out = [first] + [
      tf.convert_to_tensor(v) if tf.is_tensor(v) or isinstance(v, tf.Variable)
      else tf.convert_to_tensor(v, dtype=first.dtype) for v in values[1:]]
  for t in out:
    if t.dtype != out[0].dtype:
      raise TypeError(f"{op_name}: inputs must all have the same type, got "
                      f"{out[0].dtype.name} and {t.dtype.name}.")
  if out[0].dtype not in _FLOATS:
    raise TypeError(f"{op_name}: type {out[0].dtype.name} is not one of "
                    "bfloat16, half, float32, float64.")
  return out


def _rank(t):
  return t.shape.rank


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def _check_name(message):
  """An op name that carries `message`: XLA drops tf.debugging assertions,
  so the run-time checks below are shape ops that fail when XLA compiles the
  function for the actual shapes, and the kernel's message travels in the
  failing node's name ("[[{{node ...}}]]" in the error)."""
  return _NAME_UNSAFE.sub("_", message).strip("_.-")[:150] or "check"


def _checked_rank(t, rank, message):
  """t, whose rank must be `rank`: checked now when known, else when XLA
  compiles (EnsureShape). `message(actual_rank)` is the kernel's message."""
  if _rank(t) is not None:
    if _rank(t) != rank:
      raise _invalid(message(_rank(t)))
    return t
  name = _check_name(message("N"))
  return tf.ensure_shape(tf.identity(t, name=name), [None] * rank, name=name)


def _checked_size(t, x, axis, message, rank_message):
  """t (rank 1), whose size must be dim `axis` of x: checked now when both
  are known, else when XLA compiles (a reshape to that dim; reading the dim
  fails first when x has no such axis, `rank_message`)."""
  depth = x.shape[axis] if _rank(x) is not None else None
  size = t.shape[0] if _rank(t) == 1 else None
  if depth is not None and size is not None:
    if size != depth:
      raise _invalid(message(size, depth))
    return t
  with tf.name_scope(_check_name(rank_message)):
    depth = tf.shape(x)[axis]
  return tf.reshape(t, [depth], name=_check_name(message("N", "D")))


def _checked_same_shape(g, x, message):
  """(g, x), whose shapes must be equal: checked now when both are known,
  else when XLA compiles (each broadcast to the other's shape, which passes
  only for equal shapes)."""
  if g.shape.is_fully_defined() and x.shape.is_fully_defined():
    if g.shape != x.shape:
      raise _invalid(message)
    return g, x
  name = _check_name(message)
  return (tf.broadcast_to(g, tf.shape(x), name=name),
          tf.broadcast_to(x, tf.shape(g), name=name))


def _check_int32(value, name):
  """The kernels read int attrs as int32 (TF's GetAttr message)."""
  if not -(1 << 31) <= value < (1 << 31):
    raise _invalid(f"Attr {name} has value {value} out of range for an int32")


def _store(value, dtype):
  """Compute type -> storage type: the one rounding step."""
  return value if value.dtype == dtype else tf.cast(value, dtype)


def _store_double(value, dtype):
  """A float64 sum -> storage type with one rounding (math.h StoreDoubleAs):
  16-bit types go through float32 rounded to odd."""
  if dtype == tf.float64:
    return value
  f = tf.cast(value, tf.float32)
  if dtype == tf.float32:
    return f
  u = tf.bitcast(f, tf.int32)
  inexact = (tf.cast(f, tf.float64) != value) & ~tf.math.is_nan(value)
  stepped_back = tf.abs(tf.cast(f, tf.float64)) > tf.abs(value)
  odd = tf.bitwise.bitwise_or(tf.where(stepped_back, u - 1, u), 1)
  return tf.cast(tf.bitcast(tf.where(inexact, odd, u), tf.float32), dtype)


def _positive_zero_if_zero(s):
  """The kernels' sums start from +0.0 and so are never -0."""
  return tf.where(tf.equal(s, 0), tf.zeros_like(s), s)


# ---- canonical sums (cc/core/layout.h) ---------------------------------------


def _sequential_sum(parts):
  """((parts[0] + parts[1]) + parts[2]) + ...: tf2xla lowers AddN to exactly
  this chain of adds, in input order (the kernels start from 0.0 + parts[0]:
  only the sign of a zero can differ, and the callers fix that)."""
  return parts[0] if len(parts) == 1 else tf.add_n(parts)


def _tree_fold_lanes(lanes):
  """TreeFoldLanes over the last axis: lanes[j] += lanes[j + s], s = L/2..1."""
  width = lanes.shape[-1]
  while width > 1:
    width //= 2
    low, high = tf.split(lanes, 2, axis=-1)
    lanes = low + high
  return tf.squeeze(lanes, -1)


def _sequential_rows(table, count, axis):
  """The sum of the `count` slices of `table` along `axis`, in order from +0:
  a loop, so that no copy of the table is unstacked or padded."""
  shape = tf.shape(table)
  acc = tf.zeros(tf.concat([shape[:axis], shape[axis + 1:]], 0), table.dtype)
  _, acc = tf.while_loop(
      lambda r, acc: r < count,
      lambda r, acc: (r + 1, acc + tf.gather(table, r, axis=axis)),
      (tf.constant(0, count.dtype), acc))
  return acc


def _combine_partials(partials):
  """CombinePartials over axis 1 of `partials` [p, chunks, ...].

  The lanes that no partial reaches hold +0 and change no bit of a sum (the
  callers turn a -0 sum into +0), so, as the CPU kernel, only
  min(chunks, 256) lanes are stored: memory stays proportional to the
  partials, not to 256 of them per channel."""
  shape = tf.shape(partials)
  chunks = shape[1]
  width = tf.maximum(tf.minimum(chunks, _COMBINE_LANES), 1)
  rows = (chunks + width - 1) // width
  padding = [[0, 0], [0, rows * width - chunks]] + [[0, 0]] * (
      partials.shape.rank - 2)
  table = tf.reshape(tf.pad(partials, padding),
                     tf.concat([shape[:1], [rows, width], shape[2:]], 0))
  # Lane l adds partials l, l + width, ... in order: a loop over the rows
  # (width == 256 whenever there is more than one row).
  lanes = _sequential_rows(table, rows, 1)  # [p, width, ...]
  # TreeFoldLanes over 256 lanes, of which the first `width` are stored:
  # lanes[j] += lanes[j + s] for j < s, where j + s < width.
  index = tf.range(width)
  mask_shape = [1, -1] + [1] * (partials.shape.rank - 2)
  stride = _COMBINE_LANES // 2
  while stride >= 1:
    reached = tf.reshape(index + stride < width, mask_shape)
    partner = tf.gather(lanes, tf.minimum(index + stride, width - 1), axis=1)
    lanes = tf.where(reached, lanes + partner, lanes)
    stride //= 2
  return tf.gather(lanes, 0, axis=1)


def _flat_sums(terms):
  """The per-tensor canonical sums of float64 vectors [p, n] -> [p]."""
  n = tf.shape(terms)[1]
  chunks = (n + _FLAT_CHUNK - 1) // _FLAT_CHUNK
  table = tf.reshape(
      tf.pad(terms, [[0, 0], [0, chunks * _FLAT_CHUNK - n]]),
      [terms.shape[0], chunks, _FLAT_CHUNK // _FLAT_LANES, _FLAT_LANES])
  # Lane j of a chunk adds its elements j, j + 64, ... in order.
  lanes = _sequential_sum(tf.unstack(table, axis=2))
  return _positive_zero_if_zero(_combine_partials(_tree_fold_lanes(lanes)))


def _column_sums(terms):
  """The per-channel canonical sums of float64 matrices [p, rows, depth] ->
  [p, depth]. Chunks of 256 rows; with fewer rows, one chunk of all of them,
  unpadded (padding would cost 256 rows per channel)."""
  shape = tf.shape(terms)
  rows = shape[1]
  chunk = tf.maximum(tf.minimum(rows, _ROW_CHUNK), 1)
  chunks = (rows + chunk - 1) // chunk
  table = tf.reshape(
      tf.pad(terms, [[0, 0], [0, chunks * chunk - rows], [0, 0]]),
      tf.stack([shape[0], chunks, chunk, shape[2]]))
  # Each channel adds the rows of a chunk in order: a loop over the chunk's
  # rows, all chunks at once.
  partials = _sequential_rows(table, chunk, 2)
  return _positive_zero_if_zero(_combine_partials(partials))


# ---- QuantizeAndDequantizeV4 (math.h ComputeQdqScale, QuantizeDequantize) ----


def _qdq_bounds(signed_input, num_bits, narrow_range):
  if signed_input:
    half_range = 1 << (num_bits - 1)
    return (-half_range + 1 if narrow_range else -half_range), half_range - 1
  return 0, (1 << num_bits) - 1


def _channel_view(x, axis):
  """x as [outer, depth, inner] around `axis` (dynamic shapes allowed)."""
  shape = tf.shape(x)
  return tf.reshape(x, tf.stack([tf.reduce_prod(shape[:axis]), shape[axis],
                                 tf.reduce_prod(shape[axis + 1:])]))


def _with_zero_sign(mx, values, axis):
  """A zero maximum is +0 when the data hold a +0, else -0 (math.h RunningMax
  merges equal values by their bits, whatever the scan order). The sign of a
  zero minimum never reaches a QDQ output."""
  positive_zero = tf.reduce_any(tf.equal(values, 0) & ~_signbit(values),
                                axis=axis)
  zero = tf.where(positive_zero, tf.zeros_like(mx),
                  tf.constant(-0.0, mx.dtype))
  return tf.where(tf.equal(mx, 0), zero, mx)


def _data_range(xc, axis):
  """Per-tensor (axis -1) or per-channel min/max of the data, NaNs skipped."""
  inf = tf.constant(np.inf, xc.dtype)
  if axis == -1:
    values, reduce_axes = xc, None
  else:
    values = _channel_view(xc, axis)
    reduce_axes = [0, 2]
  nan = tf.math.is_nan(values)
  mn = tf.reduce_min(tf.where(nan, inf, values), axis=reduce_axes)
  mx = tf.reduce_max(tf.where(nan, -inf, values), axis=reduce_axes)
  return mn, _with_zero_sign(mx, values, reduce_axes)


def _check_qdq_axis(x, axis, what):
  if axis < -1:
    raise _invalid(f"Axis must be at least -1. Found {axis}")
  rank = _rank(x)
  if axis != -1 and rank is not None and axis >= rank:
    if what == "grad":
      raise _invalid("Axis should be -1 or 0 or a positive value less than "
                     f"{rank}but given axis value was {axis}")
    raise _invalid(f"Shape must be at least rank {axis + 1} but is rank {rank}")


def _check_channel_range(t, name, x, axis):
  t = _checked_rank(t, 1, lambda _: f"Shape must be rank 1 for {name} when "
                    "the axis is specified")
  return _checked_size(t, x, axis, lambda size, depth: (
      f"{name} has incorrect size, was {size} expected {depth} to match dim "
      f"{axis} of the input {x.shape}"), f"Shape must be at least rank {axis + 1}")


def _broadcast_channel(v, x, axis):
  """A per-channel vector shaped to broadcast against x."""
  if axis == -1:
    return v
  if _rank(x) is None:  # [depth, 1, ...] of x's rank, known when XLA compiles
    return tf.reshape(v, tf.concat(
        [[-1], tf.ones([tf.rank(x) - axis - 1], tf.int32)], 0))
  return tf.reshape(v, [-1] + [1] * (_rank(x) - axis - 1))


def _qdq_forward(x, input_min, input_max, signed_input, num_bits, range_given,
                 round_mode, narrow_range, axis):
  c = _compute_dtype(x.dtype)
  xc = _to_compute(x)
  qmin, qmax = _qdq_bounds(signed_input, num_bits, narrow_range)
  qmin_c, qmax_c = _const(qmin, c), _const(qmax, c)
  if range_given:
    mins, maxs = _to_compute(input_min), _to_compute(input_max)
  else:
    mins, maxs = _data_range(xc, axis)
  largest = _const(np.finfo(c.as_numpy_dtype).max, c)
  mins, maxs, qmin_div, qmax_div = _opaque(mins, maxs, qmin_c, qmax_c)
  scale_from_min = tf.where(qmin_c * mins > 0, qmin_c / mins, largest)
  scale_from_max = tf.where(qmax_c * maxs > 0, qmax_c / maxs, largest)
  from_min = scale_from_min < scale_from_max
  scale = tf.where(from_min, scale_from_min, scale_from_max)
  inverse_scale = tf.where(from_min, mins / qmin_div, maxs / qmax_div)
  min_range = tf.where(from_min, mins, qmin_c * inverse_scale)
  max_range = tf.where(from_min, qmax_c * inverse_scale, maxs)
  scale, inverse_scale, min_range, max_range = (
      _broadcast_channel(t, xc, axis) for t in _opaque(
          scale, inverse_scale, min_range, max_range))
  if range_given:
    xc = _max_prefer_left(_min_prefer_left(xc, max_range), min_range)
  y = xc * scale
  if round_mode == "HALF_TO_EVEN":
    rounded = tf.math.round(y)
  else:
    rounded = _separately_rounded(y, lambda p: tf.floor(p + 0.5))
  return _store(rounded * inverse_scale, x.dtype)


def _qdq_gradient(gradients, x, input_min, input_max, axis):
  c = _compute_dtype(x.dtype)
  xc = _to_compute(x)
  lo = _broadcast_channel(_to_compute(input_min), xc, axis)
  hi = _broadcast_channel(_to_compute(input_max), xc, axis)
  in_range = _opaque(tf.cast((xc >= lo) & (xc <= hi), c))
  return _store(_to_compute(gradients) * in_range, x.dtype)


@_no_autograph
def quantize_and_dequantize_v4(input, input_min, input_max, signed_input,  # pylint: disable=redefined-builtin
                               num_bits, range_given, round_mode,
                               narrow_range, axis, name):
  """QuantizeAndDequantizeV4 for XLA, with tf-qdq's gradient. The attrs are
  normalised (tf_qdq.quantization)."""
  if round_mode not in ("HALF_TO_EVEN", "HALF_UP"):
    raise _invalid(f"Value for attr 'round_mode' of \"{round_mode}\" is not in "
                   'the list of allowed values: "HALF_TO_EVEN", "HALF_UP"')
  _check_int32(axis, "axis")
  _check_int32(num_bits, "num_bits")
  if not 0 < num_bits < (62 if signed_input else 63):
    raise _invalid(f"num_bits is out of range: {num_bits} with signed_input_ "
                   f"{int(bool(signed_input))}")
  with tf.name_scope(name or "QuantizeAndDequantizeV4"):
    x, mn, mx = _convert_inputs("QuantizeAndDequantizeV4", input, input_min,
                                input_max)
    _check_qdq_axis(x, axis, "forward")
    if range_given:
      if axis == -1:
        mn = _checked_rank(mn, 0, lambda _: "input_min must be a scalar.")
        mx = _checked_rank(mx, 0, lambda _: "input_max must be a scalar.")
      else:
        mn = _check_channel_range(mn, "input_min_tensor", x, axis)
        mx = _check_channel_range(mx, "input_max_tensor", x, axis)

    @tf.custom_gradient
    def qdq(x, mn, mx):
      y = _qdq_forward(x, mn, mx, signed_input, num_bits, range_given,
                       round_mode, narrow_range, axis)

      def grad(dy):
        if not range_given:  # the range came from the data: identity
          return dy, tf.zeros_like(mn), tf.zeros_like(mx)
        return (_qdq_gradient(dy, x, mn, mx, axis), tf.zeros_like(mn),
                tf.zeros_like(mx))

      return y, grad

    return qdq(x, mn, mx)


@_no_autograph
def quantize_and_dequantize_v4_grad(gradients, input, input_min, input_max,  # pylint: disable=redefined-builtin
                                    axis, name):
  """QuantizeAndDequantizeV4Grad for XLA."""
  _check_int32(axis, "axis")
  with tf.name_scope(name or "QuantizeAndDequantizeV4Grad"):
    g, x, mn, mx = _convert_inputs("QuantizeAndDequantizeV4Grad", gradients,
                                   input, input_min, input_max)
    _check_qdq_axis(x, axis, "grad")
    g, x = _checked_same_shape(g, x, "gradient and input must be the same size")
    for t, label in ((mn, "min"), (mx, "max")):
      if _rank(t) is not None and _rank(t) not in (0, 1):
        raise _invalid(f"Input {label} tensor must have dimension 0 or 1. "
                       f"Received {_rank(t)}.")
    if axis != -1:
      mn = _checked_rank(mn, 1, lambda _: "Shape must be rank 1 for "
                         "input_min_tensor when the axis is specified")
      mx = _checked_rank(mx, 1, lambda _: "Shape must be rank 1 for "
                         "input_max_tensor when the axis is specified")
      rank_message = ("Axis should be -1 or 0 or a positive value less than "
                      "the rank")
      mn = _checked_size(mn, x, axis, lambda size, depth: (
          f"min has incorrect size, expected {depth} was {size}"), rank_message)
      mx = _checked_size(mx, x, axis, lambda size, depth: (
          f"max has incorrect size, expected {depth} was {size}"), rank_message)
    else:
      mn = _checked_rank(mn, 0, lambda _: "input_min must be a scalar if axis "
                         "is unspecified")
      mx = _checked_rank(mx, 0, lambda _: "input_max must be a scalar if axis "
                         "is unspecified")

    @tf.custom_gradient
    def qdq_grad(g, x, mn, mx):
      zeros = tf.zeros_like(mn)
      outputs = (_qdq_gradient(g, x, mn, mx, axis), zeros, zeros)

      def grad(d_input, *_):  # linear in g; zero w.r.t. the rest
        return (_qdq_gradient(d_input, x, mn, mx, axis), tf.zeros_like(x),
                tf.zeros_like(mn), tf.zeros_like(mx))

      return outputs, grad

    return qdq_grad(g, x, mn, mx)


# ---- FakeQuant (math.h NudgeFakeQuantRange, FakeQuantize, FakeQuantGradient) -


def _check_fake_quant_bits(num_bits):
  _check_int32(num_bits, "num_bits")
  if not 2 <= num_bits <= 16:
    raise _invalid("num_bits must be between 2 and 16, inclusive")


class _Nudged:
  """math.h NudgeFakeQuantRange on min/max of the compute type (scalars or
  per-channel vectors)."""

  def __init__(self, mn, mx, num_bits, narrow_range):
    c = mn.dtype
    quant_min = 1 if narrow_range else 0
    quant_max = (1 << num_bits) - 1
    qmin, qmax = _const(quant_min, c), _const(quant_max, c)
    # Opaque inputs: no constant folding; opaque quotients: XLA rewrites
    # A / (B / C) as (A * C) / B.
    mn, mx, span = _opaque(mn, mx, _const(quant_max - quant_min, c))
    self.all_zero = tf.equal(mn, 0) & tf.equal(mx, 0)
    scale = _opaque((mx - mn) / span)
    inverse_scale = span / (mx - mn)
    zero_point_from_min = qmin - mn / scale
    floor = tf.floor(zero_point_from_min)  # std::round of a value >= 0:
    rounded = tf.where(zero_point_from_min - floor >= 0.5, floor + 1, floor)
    zero_point = tf.where(
        zero_point_from_min < qmin, qmin,
        tf.where(zero_point_from_min > qmax, qmax,
                 tf.where(tf.math.is_nan(zero_point_from_min),
                          tf.zeros_like(rounded), rounded)))
    nudged_min = (qmin - zero_point) * scale
    nudged_max = (qmax - zero_point) * scale
    quant_zero = _separately_rounded(-nudged_min * inverse_scale,
                                     lambda p: tf.floor(p + 0.5))
    (self.scale, self.inverse_scale, self.nudged_min, self.nudged_max,
     self.quant_zero) = _opaque(scale, inverse_scale, nudged_min, nudged_max,
                                quant_zero)


def _fake_quantize(xc, n, divide):
  clamped = _max_prefer_left(_min_prefer_left(xc, n.nudged_max), n.nudged_min)
  shifted = clamped - n.nudged_min
  step = lambda t: tf.floor((t - n.quant_zero) + 0.5)
  if divide:
    on_grid = step(shifted / n.scale)
  else:
    on_grid = _separately_rounded(shifted * n.inverse_scale, step)
  return on_grid * n.scale


def _fake_quant_forward(x, mn, mx, num_bits, narrow_range, divide,
                        zero_range_outputs_zero):
  c = _compute_dtype(x.dtype)
  n = _Nudged(_to_compute(mn), _to_compute(mx), num_bits, narrow_range)
  out = _fake_quantize(_to_compute(x), n, divide)
  if zero_range_outputs_zero:
    out = tf.where(n.all_zero, tf.zeros_like(out), out)
  return _store(out, x.dtype)


def _fake_quant_masks(x, n):
  """(between, below, above) as 0/1 of the compute type."""
  c = n.scale.dtype
  xc = _to_compute(x)
  between = tf.cast((xc >= n.nudged_min) & (xc <= n.nudged_max), c)
  below = tf.cast(xc < n.nudged_min, c)
  above = tf.cast(xc > n.nudged_max, c)
  return _opaque(between, below, above)


def _fake_quant_gradient(gradients, x, mn, mx, num_bits, narrow_range, sums):
  """(wrt_input,) for Args, (wrt_input, wrt_min, wrt_max) for Vars (sums
  "flat") and PerChannel (sums "columns")."""
  c = _compute_dtype(x.dtype)
  n = _Nudged(_to_compute(mn), _to_compute(mx), num_bits, narrow_range)
  g = _to_compute(gradients)
  between, below, above = _fake_quant_masks(x, n)
  wrt_input = _store(g * between, x.dtype)
  if sums is None:
    return (wrt_input,)
  wrt_input = tf.where(n.all_zero, gradients, wrt_input)  # a plain copy
  zero = tf.zeros_like(g)
  terms = tf.cast(tf.stack([tf.where(n.all_zero, zero, g * below),
                           tf.where(n.all_zero, zero, g * above)]), tf.float64)
  if sums == "flat":
    wrt_min, wrt_max = tf.unstack(_flat_sums(tf.reshape(terms, [2, -1])))
  else:
    wrt_min, wrt_max = tf.unstack(_column_sums(
        tf.reshape(terms, tf.stack([2, -1, tf.shape(x)[-1]]))))
  return (wrt_input, _store_double(wrt_min, x.dtype),
          _store_double(wrt_max, x.dtype))


def _fake_quant_gradient_transpose(d_input, d_min, d_max, x, mn, mx, num_bits,
                                   narrow_range, zero_range_passes_through):
  """Transpose of gradients -> (g*between, sum(g*below), sum(g*above)); the
  range sums of a channel broadcast back over its elements."""
  c = _compute_dtype(x.dtype)
  n = _Nudged(_to_compute(mn), _to_compute(mx), num_bits, narrow_range)
  between, below, above = _fake_quant_masks(x, n)
  d = _to_compute(d_input) * between
  if d_min is not None:
    d += _to_compute(d_min) * below
  if d_max is not None:
    d += _to_compute(d_max) * above
  d = _store(d, x.dtype)
  if zero_range_passes_through:  # Vars/PerChannel: min == max == 0
    d = tf.where(n.all_zero, d_input, d)
  return d


def _check_vars_ranges(mn, mx):
  """(mn, mx), checked to be scalars."""
  return tuple(_checked_rank(t, 0, lambda r, label=label: (
      f"`{label}` must be rank 0 but is rank {r}")) for t, label in (
          (mn, "min"), (mx, "max")))


def _check_per_channel_ranges(x, mn, mx):
  """(mn, mx), checked to be vectors of the depth of x (the last axis)."""
  if _rank(x) == 0:
    raise _invalid("inputs must be at least rank 1 for a per-channel op, but "
                   "is rank 0")
  out = []
  for t, label in ((mn, "min"), (mx, "max")):
    t = _checked_rank(t, 1, lambda r, label=label: (
        f"`{label}` must be rank 1 but is rank {r}"))
    out.append(_checked_size(t, x, -1, lambda size, depth, label=label: (
        f"{label} has incorrect size, expected {depth} was {size}"),
        "inputs must be at least rank 1 for a per-channel op"))
  return tuple(out)


def _args_range(x, min, max):  # pylint: disable=redefined-builtin
  """The float attrs of Args as tensors of the compute type (checked first,
  as the kernels check them when they are built)."""
  min, max = _check_args_range(min, max)
  c = _compute_dtype(x.dtype)
  return _const(min, c), _const(max, c)


def _check_args_range(min, max):  # pylint: disable=redefined-builtin
  min, max = _flushed_float32(min), _flushed_float32(max)
  if not min < max:
    raise _invalid(f"min has to be smaller than max, was: {min} >= {max}")
  return min, max


@_no_autograph
def fake_quant_with_min_max_args(inputs, min, max, num_bits, narrow_range,  # pylint: disable=redefined-builtin
                                 name):
  _check_args_range(min, max)
  _check_fake_quant_bits(num_bits)
  with tf.name_scope(name or "FakeQuantWithMinMaxArgs"):
    (x,) = _convert_inputs("FakeQuantWithMinMaxArgs", inputs)
    mn, mx = _args_range(x, min, max)

    @tf.custom_gradient
    def fake_quant(x):
      y = _fake_quant_forward(x, mn, mx, num_bits, narrow_range, divide=False,
                              zero_range_outputs_zero=False)
      return y, lambda dy: _fake_quant_gradient(dy, x, mn, mx, num_bits,
                                                narrow_range, None)[0]

    return fake_quant(x)


@_no_autograph
def fake_quant_with_min_max_args_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits, narrow_range, name):
  _check_args_range(min, max)
  _check_fake_quant_bits(num_bits)
  with tf.name_scope(name or "FakeQuantWithMinMaxArgsGradient"):
    g, x = _convert_inputs("FakeQuantWithMinMaxArgsGradient", gradients, inputs)
    g, x = _checked_same_shape(g, x, "Inputs to operation "
                      "FakeQuantWithMinMaxArgsGradient must have the same "
                      "size and shape.")
    mn, mx = _args_range(x, min, max)

    @tf.custom_gradient
    def gradient(g, x):
      out = _fake_quant_gradient(g, x, mn, mx, num_bits, narrow_range, None)[0]

      def grad(d_input):
        return (_fake_quant_gradient_transpose(d_input, None, None, x, mn, mx,
                                               num_bits, narrow_range, False),
                tf.zeros_like(x))

      return out, grad

    return gradient(g, x)


def _fake_quant_vars_op(op_name, inputs, min, max, num_bits, narrow_range,  # pylint: disable=redefined-builtin
                        name, per_channel):
  _check_fake_quant_bits(num_bits)
  with tf.name_scope(name or op_name):
    x, mn, mx = _convert_inputs(op_name, inputs, min, max)
    if per_channel:
      mn, mx = _check_per_channel_ranges(x, mn, mx)
    else:
      mn, mx = _check_vars_ranges(mn, mx)

    @tf.custom_gradient
    def fake_quant(x, mn, mx):
      y = _fake_quant_forward(x, mn, mx, num_bits, narrow_range,
                              divide=not per_channel,
                              zero_range_outputs_zero=True)

      def grad(dy):
        return _fake_quant_gradient(dy, x, mn, mx, num_bits, narrow_range,
                                    "columns" if per_channel else "flat")

      return y, grad

    return fake_quant(x, mn, mx)


def _fake_quant_vars_gradient_op(op_name, gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                 num_bits, narrow_range, name, per_channel):
  _check_fake_quant_bits(num_bits)
  with tf.name_scope(name or op_name):
    g, x, mn, mx = _convert_inputs(op_name, gradients, inputs, min, max)
    g, x = _checked_same_shape(g, x, "gradient and input must be the same size")
    if per_channel:
      mn, mx = _check_per_channel_ranges(x, mn, mx)
    else:
      mn, mx = _check_vars_ranges(mn, mx)
    sums = "columns" if per_channel else "flat"

    @tf.custom_gradient
    def gradient(g, x, mn, mx):
      outputs = _fake_quant_gradient(g, x, mn, mx, num_bits, narrow_range, sums)

      def grad(d_input, d_min, d_max):
        d = _fake_quant_gradient_transpose(d_input, d_min, d_max, x, mn, mx,
                                           num_bits, narrow_range,
                                           zero_range_passes_through=True)
        return d, tf.zeros_like(x), tf.zeros_like(mn), tf.zeros_like(mx)

      return outputs, grad

    return gradient(g, x, mn, mx)


@_no_autograph
def fake_quant_with_min_max_vars(inputs, min, max, num_bits, narrow_range,  # pylint: disable=redefined-builtin
                                 name):
  return _fake_quant_vars_op("FakeQuantWithMinMaxVars", inputs, min, max,
                             num_bits, narrow_range, name, per_channel=False)


@_no_autograph
def fake_quant_with_min_max_vars_gradient(gradients, inputs, min, max,  # pylint: disable=redefined-builtin
                                          num_bits, narrow_range, name):
  return _fake_quant_vars_gradient_op(
      "FakeQuantWithMinMaxVarsGradient", gradients, inputs, min, max,
      num_bits, narrow_range, name, per_channel=False)


@_no_autograph
def fake_quant_with_min_max_vars_per_channel(inputs, min, max, num_bits,  # pylint: disable=redefined-builtin
                                             narrow_range, name):
  return _fake_quant_vars_op("FakeQuantWithMinMaxVarsPerChannel", inputs, min,
                             max, num_bits, narrow_range, name,
                             per_channel=True)


@_no_autograph
def fake_quant_with_min_max_vars_per_channel_gradient(gradients, inputs, min,  # pylint: disable=redefined-builtin
                                                      max, num_bits,
                                                      narrow_range, name):
  return _fake_quant_vars_gradient_op(
      "FakeQuantWithMinMaxVarsPerChannelGradient", gradients, inputs, min, max,
      num_bits, narrow_range, name, per_channel=True)
