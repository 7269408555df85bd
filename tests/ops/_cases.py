"""Cases shared by the op tests. OP_NAMES: the ops tf_qdq registers (each
as "TfQdq>" + name). The *_ERRORS tables: (keyword arguments, TF's message)
per op, which test_validation.py checks against TF's kernels and
test_contracts.py on every other path (the core, XLA, the eager fast path)."""
import numpy as np

OP_NAMES = [
    "QuantizeAndDequantizeV4",
    "QuantizeAndDequantizeV4Grad",
    "FakeQuantWithMinMaxArgs",
    "FakeQuantWithMinMaxArgsGradient",
    "FakeQuantWithMinMaxVars",
    "FakeQuantWithMinMaxVarsGradient",
    "FakeQuantWithMinMaxVarsPerChannel",
    "FakeQuantWithMinMaxVarsPerChannelGradient",
]

X = np.array([[1., 2., 3.], [4., 5., 6.]], np.float32)
XT = np.ascontiguousarray(X.T)  # same number of elements, other shape
F = np.float32
INT32_MAX = 2**31 - 1

V4_ERRORS = [
    # construction: num_bits in 1..61 signed, 1..62 unsigned
    (dict(num_bits=0), "num_bits is out of range: 0 with signed_input_ 1"),
    (dict(num_bits=-3), "num_bits is out of range: -3 with signed_input_ 1"),
    (dict(num_bits=62), "num_bits is out of range: 62 with signed_input_ 1"),
    (dict(num_bits=63, signed_input=False),
     "num_bits is out of range: 63 with signed_input_ 0"),
    (dict(num_bits=0, signed_input=False),
     "num_bits is out of range: 0 with signed_input_ 0"),
    # construction runs before Compute's axis check
    (dict(num_bits=0, axis=-7), "num_bits is out of range: 0 with signed_input_ 1"),
    # attrs read as int32
    (dict(axis=2**31), "Attr axis has value 2147483648 out of range for an int32"),
    (dict(axis=-2**31 - 1),
     "Attr axis has value -2147483649 out of range for an int32"),
    (dict(num_bits=2**31),
     "Attr num_bits has value 2147483648 out of range for an int32"),
    # Compute, in order
    (dict(axis=-2), "Axis must be at least -1. Found -2"),
    (dict(axis=-100), "Axis must be at least -1. Found -100"),
    (dict(axis=-2, range_given=True, input_min=np.zeros([2], F)),
     "Axis must be at least -1. Found -2"),
    (dict(axis=2), "Shape must be at least rank 3 but is rank 2"),
    (dict(axis=5, range_given=True, input_min=np.zeros([7], F)),
     "Shape must be at least rank 6 but is rank 2"),
    (dict(input=F(3.), axis=0), "Shape must be at least rank 1 but is rank 0"),
    # axis + 1 wraps in int32, as in TF
    (dict(axis=INT32_MAX), "Shape must be at least rank -2147483648 but is rank 2"),
    # range_given, per tensor
    (dict(range_given=True, input_min=np.zeros([2], F)), "input_min must be a scalar."),
    (dict(range_given=True, input_min=np.zeros([1], F)), "input_min must be a scalar."),
    (dict(range_given=True, input_min=np.zeros([2], F), input_max=np.ones([2], F)),
     "input_min must be a scalar."),
    (dict(range_given=True, input_max=np.ones([1, 1], F)), "input_max must be a scalar."),
    (dict(range_given=True, input_min=F(2.), input_max=F(1.)),
     "Invalid range: input_min 2 > input_max 1"),
    (dict(range_given=True, input_min=F(0.5), input_max=F(-0.25)),
     "Invalid range: input_min 0.5 > input_max -0.25"),
    (dict(range_given=True, input_min=F("nan"), input_max=F(1.)),
     "Invalid range: input_min nan > input_max 1"),
    (dict(range_given=True, input_min=F(1.), input_max=F("nan")),
     "Invalid range: input_min 1 > input_max nan"),
    (dict(range_given=True, input=X.astype(np.float64), input_min=np.float64(0.1),
          input_max=np.float64(-0.1)),
     "Invalid range: input_min 0.1 > input_max -0.1"),
]

V4_GRAD_ERRORS = [
    (dict(axis=2**31), "Attr axis has value 2147483648 out of range for an int32"),
    (dict(axis=-2), "Axis must be at least -1. Found -2"),
    (dict(axis=-100, gradients=XT), "Axis must be at least -1. Found -100"),
    (dict(axis=2), "Axis should be -1 or 0 or a positive value less than 2but "
                   "given axis value was 2"),
    (dict(axis=INT32_MAX), "Axis should be -1 or 0 or a positive value less than "
                           "2but given axis value was 2147483647"),
    (dict(axis=0, input=F(1.), gradients=F(1.)),
     "Axis should be -1 or 0 or a positive value less than 0but given axis value "
     "was 0"),
    # axis is checked before the shapes
    (dict(axis=3, gradients=XT), "Axis should be -1 or 0 or a positive value less "
                                 "than 2but given axis value was 3"),
    # exact shape, not just the element count
    (dict(gradients=XT), "gradient and input must be the same size"),
    (dict(gradients=X[:1]), "gradient and input must be the same size"),
    (dict(gradients=XT, input_min=np.zeros([2, 2], F)),
     "gradient and input must be the same size"),
    (dict(input_min=np.zeros([2, 1], F)),
     "Input min tensor must have dimension 0 or 1. Received 2."),
    (dict(input_min=np.zeros([1, 1, 1], F), input_max=np.zeros([2, 2], F)),
     "Input min tensor must have dimension 0 or 1. Received 3."),
    (dict(input_max=np.zeros([2, 2], F), axis=0),
     "Input max tensor must have dimension 0 or 1. Received 2."),
    (dict(axis=0, input_min=F(0.), input_max=np.ones([2], F)),
     "Shape must be rank 1 for input_min_tensor when the axis is specified"),
    (dict(axis=0, input_min=F(0.), input_max=F(1.)),
     "Shape must be rank 1 for input_min_tensor when the axis is specified"),
    (dict(axis=1, input_min=np.zeros([3], F), input_max=F(1.)),
     "Shape must be rank 1 for input_max_tensor when the axis is specified"),
    # both ranks before either size
    (dict(axis=1, input_min=np.zeros([2], F), input_max=F(1.)),
     "Shape must be rank 1 for input_max_tensor when the axis is specified"),
    (dict(axis=0, input_min=np.zeros([3], F), input_max=np.ones([2], F)),
     "min has incorrect size, expected 2 was 3"),
    (dict(axis=1, input_min=np.zeros([3], F), input_max=np.ones([2], F)),
     "max has incorrect size, expected 3 was 2"),
    (dict(axis=1, input_min=np.zeros([0], F), input_max=np.ones([0], F)),
     "min has incorrect size, expected 3 was 0"),
    # axis -1: exactly rank 0 (shape [1] rejected)
    (dict(input_min=np.zeros([1], F)),
     "input_min must be a scalar if axis is unspecified"),
    (dict(input_max=np.ones([2], F)),
     "input_max must be a scalar if axis is unspecified"),
    (dict(input_min=np.zeros([3], F), input_max=np.ones([2], F)),
     "input_min must be a scalar if axis is unspecified"),
]

NUM_BITS_MSG = "num_bits must be between 2 and 16, inclusive"

VARS_ERRORS = [
    (dict(num_bits=1), NUM_BITS_MSG),
    (dict(num_bits=17), NUM_BITS_MSG),
    (dict(num_bits=0, narrow_range=True), NUM_BITS_MSG),
    (dict(num_bits=-1, min=np.zeros([2], F)), NUM_BITS_MSG),
    (dict(num_bits=2**31), "Attr num_bits has value 2147483648 out of range for an "
                           "int32"),
    (dict(min=np.zeros([1], F)), "`min` must be rank 0 but is rank 1"),
    (dict(min=np.zeros([2, 3], F), max=np.ones([2, 3], F)),
     "`min` must be rank 0 but is rank 2"),
    (dict(max=np.ones([1, 1], F)), "`max` must be rank 0 but is rank 2"),
    (dict(max=np.ones([0], F)), "`max` must be rank 0 but is rank 1"),
]

VARS_GRAD_ERRORS = VARS_ERRORS + [
    (dict(gradients=XT), "gradient and input must be the same size"),
    (dict(gradients=X[:, :2]), "gradient and input must be the same size"),
    # shape check before the range checks, which come before nothing else
    (dict(gradients=XT, min=np.zeros([2, 2], F)),
     "gradient and input must be the same size"),
    (dict(min=np.zeros([2, 2], F), max=np.zeros([2, 2], F)),
     "`min` must be rank 0 but is rank 2"),
]

ARGS_ERRORS = [
    (dict(min=1., max=1.), "min has to be smaller than max, was: 1 >= 1"),
    (dict(min=2., max=1.), "min has to be smaller than max, was: 2 >= 1"),
    (dict(min=0.5, max=-0.25), "min has to be smaller than max, was: 0.5 >= -0.25"),
    (dict(min=0.1, max=-0.3), "min has to be smaller than max, was: 0.1 >= -0.3"),
    (dict(min=float("nan"), max=1.), "min has to be smaller than max, was: nan >= 1"),
    (dict(min=7.), "min has to be smaller than max, was: 7 >= 6"),
    # the range is checked before num_bits
    (dict(min=1., max=1., num_bits=1), "min has to be smaller than max, was: 1 >= 1"),
    (dict(num_bits=1), NUM_BITS_MSG),
    (dict(num_bits=17, narrow_range=True), NUM_BITS_MSG),
    (dict(num_bits=-2**31 - 1),
     "Attr num_bits has value -2147483649 out of range for an int32"),
]

PER_CHANNEL_ERRORS = [
    (dict(num_bits=1), NUM_BITS_MSG),
    (dict(num_bits=17, min=F(0.)), NUM_BITS_MSG),
    (dict(min=F(0.)), "`min` must be rank 1 but is rank 0"),
    (dict(min=np.zeros([4, 0, 0], F)), "`min` must be rank 1 but is rank 3"),
    (dict(min=np.zeros([1, 1], F), max=np.zeros([1, 1], F)),
     "`min` must be rank 1 but is rank 2"),
    (dict(min=np.zeros([2], F)), "min has incorrect size, expected 3 was 2"),
    # min's size before max's rank
    (dict(min=np.zeros([2], F), max=F(1.)), "min has incorrect size, expected 3 was 2"),
    (dict(max=F(1.)), "`max` must be rank 1 but is rank 0"),
    (dict(max=np.ones([3, 1], F)), "`max` must be rank 1 but is rank 2"),
    (dict(max=np.ones([4], F)), "max has incorrect size, expected 3 was 4"),
    (dict(inputs=np.zeros([5], F), min=np.zeros([3], F), max=np.ones([3], F)),
     "min has incorrect size, expected 5 was 3"),
]
