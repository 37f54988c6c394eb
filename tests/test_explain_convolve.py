"""Hand kernels, feature maps of an image, the lecture's walk-through and the "X or X?" case study."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnlab.data.builtin.xo import XO_CLEAN, XO_FILTERS
from cnnlab.errors import CnnlabError
from cnnlab.interpret import (KERNELS, conv2d_direct, convolve_image, explain_convolution, parse_kernel,
                            plot_feature_maps, train_xo_cnn, xo_case_study)
from cnnlab.interpret.convolve import LECTURE_FILTER, LECTURE_IMAGE



def picture(path) -> np.ndarray:
    """A written figure as (H, W, 3) ints, after checking that it is a PNG."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int)


def red_and_blue(rgb: np.ndarray) -> tuple[int, int]:
    """Pixels clearly red and clearly blue: where a signed map is drawn (positive red, negative blue)."""
    return int((rgb[..., 0] - rgb[..., 2] > 100).sum()), int((rgb[..., 2] - rgb[..., 0] > 100).sum())

# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------


def test_every_named_kernel_parses_to_a_3x3_copy():
    for name in KERNELS:
        kernel = parse_kernel(name)
        assert kernel.shape == (3, 3) and kernel.flags.writeable
        np.testing.assert_array_equal(kernel, KERNELS[name])
    np.testing.assert_array_equal(parse_kernel(" X_Crossing "), XO_FILTERS["crossing"])
    assert {"identity", "sharpen", "edge", "strong-edge", "box-blur", "gaussian-blur", "sobel-x",
            "sobel-y", "emboss", "x-diagonal-down", "x-crossing", "x-diagonal-up"} <= set(KERNELS)


@pytest.mark.parametrize("text, expected", [
    ("1,2,3;4,5,6", [[1, 2, 3], [4, 5, 6]]),
    (" 0, -1 ; 0.5 ,1e1 ", [[0, -1], [0.5, 10]]),
    ("2", [[2]]),
])
def test_matrix_strings_parse(text, expected):
    np.testing.assert_array_equal(parse_kernel(text), expected)


@pytest.mark.parametrize("text, words", [
    ("1,2;3", ["'1,2;3'", "rows have different lengths (2, 1)", "rows separated by ';'"]),
    ("1,a;2,3", ["'1,a;2,3'", "must be a number", "rows separated by ';'"]),
    ("1,,2", ["'1,,2'", "must be a number"]),
    ("nan,1", ["'nan,1'", "finite"]),
    ("sharpn", ["'sharpn'", "unknown kernel", "did you mean sharpen", "sharpen", "x-crossing", "rows separated by ';'"]),
    ("  ", ["expected a name", "identity"]),
])
def test_bad_kernels_quote_the_text_and_say_the_expected_form(text, words):
    with pytest.raises(CnnlabError) as e:
        parse_kernel(text)
    assert all(w in str(e.value) for w in words), str(e.value)


# ---------------------------------------------------------------------------------------
# feature maps of an image
# ---------------------------------------------------------------------------------------


def test_identity_kernel_returns_the_image_from_a_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (12, 17), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "gray.png")
    result = convolve_image(tmp_path / "gray.png", ["identity"])
    np.testing.assert_allclose(result["input"], pixels / 255)
    np.testing.assert_allclose(result["feature_maps"][0]["feature_map"], pixels / 255)
    assert result["padding"] == "same" and result["feature_maps"][0]["size"] == (12, 17)


def test_feature_maps_equal_torch_for_padding_and_stride():
    image = np.random.default_rng(1).random((3, 11, 9))  # (C, H, W): converted to gray
    result = convolve_image(image, ["sobel-x", "1,2;3,4"], stride=2, padding=1)
    gray = torch.from_numpy(result["input"])[None, None]
    np.testing.assert_allclose(result["input"], np.tensordot([0.299, 0.587, 0.114], image, axes=1))
    for m, kernel in zip(result["feature_maps"], (KERNELS["sobel-x"], [[1, 2], [3, 4]])):
        expected = F.conv2d(gray, torch.tensor(kernel, dtype=torch.float64)[None, None], stride=2, padding=1)
        np.testing.assert_allclose(m["feature_map"], expected[0, 0].numpy())
    assert result["feature_maps"][1]["kernel"] == "1,2;3,4"


def test_same_padding_keeps_the_size_even_for_even_kernels():
    image = np.ones((7, 10), dtype=np.uint8)
    sizes = [m["size"] for m in convolve_image(image, ["1,1;1,1", "edge"])["feature_maps"]]
    assert sizes == [(7, 10), (7, 10)]
    assert convolve_image(image, ["edge"], stride=3)["feature_maps"][0]["size"] == (3, 4)  # ceil(n / 3)


@pytest.mark.parametrize("kwargs, words", [
    (dict(kernels=[]), ["kernels", "at least one"]),
    (dict(kernels=["edge"], stride=0), ["stride"]),
    (dict(kernels=["edge"], padding=-2), ["padding"]),
    (dict(kernels=["1,1,1,1,1,1"], padding=0), ["kernel 1x6", "larger than the padded input 5x5"]),
    (dict(image=np.ones((2, 3, 4, 5)), kernels=["edge"]), ["image", "(H, W) or (C, H, W)"]),
])
def test_convolve_image_errors(kwargs, words):
    with pytest.raises(CnnlabError) as e:
        convolve_image(**{"image": np.ones((5, 5)), **kwargs})
    assert all(w in str(e.value) for w in words), str(e.value)


def test_plot_feature_maps_draws_the_input_beside_each_map(tmp_path):
    result = convolve_image(np.random.default_rng(2).random((20, 30)), ["sharpen", "edge", "strong-edge"])
    rgb = picture(plot_feature_maps(result, tmp_path / "sub" / "maps.png"))
    assert rgb.shape == (380, 4 * 420, 3)  # one 420-pixel panel for the input and one per kernel
    panels = np.split(rgb, 4, axis=1)
    assert red_and_blue(panels[0]) == (0, 0) and len(np.unique(panels[0][..., 0])) > 50  # the input: grey levels
    for panel in panels[1:]:  # each map has both signs: red and blue cells
        assert min(red_and_blue(panel)) > 1000
    one = convolve_image(np.ones((20, 30)), ["identity"])
    assert picture(plot_feature_maps(one, tmp_path / "one.png")).shape == (380, 2 * 420, 3)


# ---------------------------------------------------------------------------------------
# the walk-through
# ---------------------------------------------------------------------------------------


def _final_matrix(text: str) -> np.ndarray:
    block = text.split("\nfeature map (")[-1].splitlines()[1:]
    return np.array([[float(v) for v in line.split()] for line in block])


def test_walkthrough_shows_the_lectures_numbers():
    text = explain_convolution()
    expected = conv2d_direct(LECTURE_IMAGE[None, None], LECTURE_FILTER[None, None])[0, 0]
    np.testing.assert_array_equal(expected, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    np.testing.assert_array_equal(_final_matrix(text), expected)
    assert "sum = 1 + 0 + 1 + 0 + 1 + 0 + 0 + 0 + 1 = 4  -> feature_map[0, 0]" in text
    assert text.count("receptive field") == 9
    assert "Output volume: (W - F + 2P)/S + 1" in text
    assert "height: (5 - 3 + 2*0)/1 + 1 = 3" in text and "width:  (5 - 3 + 2*0)/1 + 1 = 3" in text


def test_walkthrough_with_stride_padding_and_a_matrix_image():
    text = explain_convolution("1,2,3,4;5,6,7,8;9,8,7,6;5,4,3,2;1,0,1,0", "sobel-y", stride=2, padding=1)
    x = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 8, 7, 6], [5, 4, 3, 2], [1, 0, 1, 0]], dtype=float)
    expected = F.conv2d(torch.from_numpy(x)[None, None], torch.tensor(KERNELS["sobel-y"])[None, None],
                        stride=2, padding=1)[0, 0].numpy()
    np.testing.assert_array_equal(_final_matrix(text), expected)
    assert "height: (5 - 3 + 2*1)/2 + 1 = 3" in text and "width:  (4 - 3 + 2*1)/2 + 1 = 2.5" in text
    assert "zero padding (7x6)" in text
    assert len(re.findall(r"-> feature_map\[\d, \d\]", text)) == expected.size


def test_walkthrough_refuses_large_images():
    with pytest.raises(CnnlabError, match="image: 20x20 .* 324 output positions"):
        explain_convolution(np.zeros((20, 20)))


# ---------------------------------------------------------------------------------------
# "X or X?"
# ---------------------------------------------------------------------------------------


def test_xo_case_study(tmp_path):
    study = xo_case_study(tmp_path)
    down = study["feature_maps"]["clean X"]["diagonal_down"]
    assert down.shape == (7, 7)  # no padding: 9 - 3 + 1
    assert [tuple(p) for p in np.argwhere(np.isclose(down, 1.0))] == [(1, 1), (2, 2), (4, 4), (5, 5)]
    assert np.isclose(study["feature_maps"]["clean X"]["crossing"][3, 3], 1.0)
    expected = F.conv2d(torch.tensor(XO_CLEAN)[None, None],
                        torch.tensor(XO_FILTERS["diagonal_down"])[None, None])[0, 0] / 9
    np.testing.assert_allclose(down, expected.numpy(), atol=1e-6)
    for key, shape in (("feature_maps", (7, 7)), ("relu", (7, 7)), ("pooled", (4, 4))):
        for maps in study[key].values():
            for m in maps.values():
                assert m.shape == shape and m.min() >= -1 - 1e-6 and m.max() <= 1 + 1e-6
                assert key == "feature_maps" or m.min() >= 0
    assert "1.00 at: (1,1) (2,2) (4,4) (5,5)" in study["report"]
    rgb = picture(tmp_path / "xo_case_study.png")
    assert rgb.shape == (1395, 810, 3) and min(red_and_blue(rgb)) > 1000  # 7 x 4 panels, matches and mismatches


@pytest.mark.slow
def test_train_xo_cnn_reaches_99_percent(tmp_path):
    result = train_xo_cnn(tmp_path)
    assert result["test_top1"] >= 0.99, result["test_top1"]
    assert result["learned_filters"].shape == (8, 3, 3) and "test accuracy" in result["report"]
    rgb = picture(tmp_path / "xo_filters.png")
    assert rgb.shape == (440, 8 * 190, 3)  # the 3 hand-made filters above the 8 learned ones
    assert (rgb.sum(-1) < 60).sum() > 100  # their -1 cells drawn black
