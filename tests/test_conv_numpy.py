"""The NumPy convolution, ReLU and pooling equal torch's on random shapes (property-based)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.interpret import (avg_pool2d, conv2d_direct, conv2d_im2col, max_pool2d, output_size,
                            relu)

CONVS = [conv2d_direct, conv2d_im2col]
PROPERTY = settings(max_examples=60, deadline=None)


@st.composite
def conv_cases(draw):
    """x (N, C, H, W), weight (F, C, kh, kw), bias (F,), stride and padding pairs."""
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))  # the kernel fits the padded input
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, kh, kw)),
            rng.standard_normal(f), (sh, sw), (ph, pw))


@pytest.mark.parametrize("conv", CONVS, ids=lambda fn: fn.__name__)
@PROPERTY
@given(case=conv_cases())
def test_conv2d_equals_torch(conv, case):
    x, weight, bias, stride, padding = case
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias),
                        stride=stride, padding=padding).numpy()
    got = conv(x, weight, bias, stride=stride, padding=padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("conv", CONVS, ids=lambda fn: fn.__name__)
def test_conv2d_int_arguments_float32_and_no_bias(conv):
    x = np.arange(2 * 3 * 6 * 5, dtype=np.float32).reshape(2, 3, 6, 5) / 100
    weight = np.linspace(-1, 1, 4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3)
    got = conv(x, weight, stride=2, padding=1)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), stride=2, padding=1).numpy()
    assert got.dtype == np.float32 and got.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 9)), draw(st.integers(max(1, kw - 2 * pw), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w))
    return x, (kh, kw), stride, (ph, pw), draw(st.booleans())


@pytest.mark.parametrize("ours, theirs", [(max_pool2d, F.max_pool2d), (avg_pool2d, F.avg_pool2d)],
                         ids=["max", "avg"])
@PROPERTY
@given(case=pool_cases())
def test_pooling_equals_torch(ours, theirs, case):
    x, kernel, stride, padding, ceil_mode = case
    expected = theirs(torch.from_numpy(x), kernel, stride, padding, ceil_mode=ceil_mode).numpy()
    got = ours(x, kernel, stride, padding, ceil_mode=ceil_mode)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_lecture_max_pool_2x2_stride_2():
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)[None, None]
    np.testing.assert_array_equal(max_pool2d(x, 2)[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(avg_pool2d(x, 2)[0, 0], [[3.25, 5.25], [2, 2]])


def test_relu_equals_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(relu(x), torch.relu(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("W, F_, P, S, expected", [
    (5, 3, 0, 1, 3),      # the lecture's 5x5 image, 3x3 filter
    (7, 3, 1, 2, 4),
    (32, 5, 2, 1, 32),    # "same" padding
    (227, 11, 0, 4, 55),  # AlexNet's first layer
    (4, 4, 0, 1, 1),
])
def test_output_size(W, F_, P, S, expected):
    assert output_size(W, F_, P, S) == expected


@pytest.mark.parametrize("args, words", [
    ((6, 3, 0, 2), ["2.5", "not an integer", "stride"]),
    ((2, 5, 0, 1), ["larger than the padded input"]),
    ((5, 3, 0, 0), ["S (stride)", ">= 1"]),
    ((5, 3, -1, 1), ["P (padding)", ">= 0"]),
    ((5, 0, 0, 1), ["F (filter size)"]),
])
def test_output_size_errors(args, words):
    with pytest.raises(CnnlabError) as e:
        output_size(*args)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_output_size_floor_as_frameworks_do():
    assert output_size(6, 3, 0, 2, exact=False) == 2


@pytest.mark.parametrize("conv", CONVS, ids=lambda fn: fn.__name__)
@pytest.mark.parametrize("kwargs, words", [
    (dict(stride=0), ["stride", ">= 1"]),
    (dict(stride=(1, -1)), ["stride"]),
    (dict(padding=-1), ["padding", ">= 0"]),
    (dict(weight=np.ones((1, 1, 6, 3))), ["weight", "kernel 6x3", "larger than the padded input 5x5"]),
    (dict(weight=np.ones((2, 3, 3, 3))), ["3 input channels", "x has 1 channels"]),
    (dict(bias=np.ones(3)), ["bias", "one per filter"]),
    (dict(x=np.ones((5, 5))), ["x must have 4 dimensions"]),
])
def test_conv_errors_name_the_argument(conv, kwargs, words):
    args = dict(x=np.ones((1, 1, 5, 5)), weight=np.ones((2, 1, 3, 3)))
    with pytest.raises(CnnlabError) as e:
        conv(**{**args, **kwargs})
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize("kwargs, words", [
    (dict(kernel_size=0), ["kernel_size"]),
    (dict(kernel_size=2, stride=0), ["stride"]),
    (dict(kernel_size=2, padding=2), ["padding", "at most half"]),
    (dict(kernel_size=6), ["kernel_size 6", "larger than the padded input"]),
])
def test_pool_errors_name_the_argument(pool, kwargs, words):
    with pytest.raises(CnnlabError) as e:
        pool(np.ones((1, 1, 5, 5)), **kwargs)
    assert all(w in str(e.value) for w in words), str(e.value)
