"""The depth-threshold bokeh: edge cases, the fact sheet's behavioural checks, an independent reference, the
disparity-to-depth normalisation, and the method through render and eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lensblur.baselines.threshold import (
    DepthThreshold,
    default_sigma,
    disparity_to_normalized_depth,
    gaussian_blur,
    threshold_blur,
    threshold_mask,
)
from lensblur.errors import InputError
from lensblur.geometry import DepthRange
from lensblur.methods import get_method


@pytest.fixture
def image(textured) -> torch.Tensor:
    return torch.from_numpy(textured).permute(2, 0, 1)[None].float()      # (1, 3, 48, 64)


def halves(shape, near: float, far: float) -> torch.Tensor:
    """A depth map: left half ``near``, right half ``far``."""
    depth = torch.full((1, 1, *shape), far)
    depth[..., : shape[1] // 2] = near
    return depth


def test_threshold_one_is_the_identity_and_zero_blurs_everything(image):
    depth = disparity_to_normalized_depth(torch.rand(1, 1, 48, 64))            # in [0.1, 1]
    assert torch.equal(threshold_blur(image, depth, threshold=1.0), image)
    torch.testing.assert_close(threshold_blur(image, depth, threshold=0.0, sigma=2.0), gaussian_blur(image, 2.0))
    assert not torch.allclose(gaussian_blur(image, 2.0), image)


def test_halves_left_sharp_right_blurred(image):
    """The sheet's section 7: depth 0.1 on the left, 0.9 on the right, t = 0.3: the left half is bit-identical
    to the input, the right half the blurred input; t = 0.2 blurs at least as many pixels as t = 0.3."""
    depth = halves((48, 64), 0.1, 0.9)
    out = threshold_blur(image, depth, threshold=0.3, sigma=1.5)
    assert torch.equal(out[..., :32], image[..., :32])
    torch.testing.assert_close(out[..., 32:], gaussian_blur(image, 1.5)[..., 32:])
    ramp = torch.linspace(0.01, 1.0, 64).expand(1, 1, 48, 64)
    assert threshold_mask(ramp, 0.2).sum() >= threshold_mask(ramp, 0.3).sum() > 0


def test_equals_an_independent_reference_on_a_tiny_image():
    """scipy's Gaussian (sigma 1, truncate 3: radius 3; mode 'mirror' = reflection about the edge pixel) of a
    5 x 6 image, taken where the hand-made depth exceeds 0.25."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    img = rng.random((5, 6, 3))
    depth = np.array([[0.1, 0.1, 0.3, 0.3, 0.9, 0.9]] * 5)
    depth[0, 0] = 0.26
    blurred = np.stack([gaussian_filter(img[..., c], 1.0, truncate=3.0, mode="mirror") for c in range(3)], -1)
    expected = np.where((depth > 0.25)[..., None], blurred, img)
    got = threshold_blur(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(depth)[None, None],
                         threshold=0.25, sigma=1.0)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=1e-12)


def test_a_feathered_mask_softens_only_the_edge(image):
    depth = halves((48, 64), 0.1, 0.9)
    hard, soft = threshold_mask(depth, 0.3), threshold_mask(depth, 0.3, feather=2.0)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    edge = soft[0, 0, 0, 28:36]
    assert ((edge > 0) & (edge < 1)).all() and torch.all(edge[1:] >= edge[:-1])
    assert torch.equal(soft[..., :20], hard[..., :20]) and torch.allclose(soft[..., 44:], hard[..., 44:])
    out = threshold_blur(image, depth, threshold=0.3, sigma=1.5, feather=2.0)
    assert torch.equal(out[..., :20], image[..., :20])


def test_disparity_as_the_papers_normalised_depth():
    """Depth over 10 m: disparity 0 -> 10 m -> 1; disparity 1 -> 1 m (no metric range) or NYU's 0.5 m."""
    d = torch.tensor([0.0, 1.0, 0.5])
    torch.testing.assert_close(disparity_to_normalized_depth(d), torch.tensor([1.0, 0.1, 1 / (1 + 9 * 0.5)]))
    torch.testing.assert_close(disparity_to_normalized_depth(d, DepthRange(0.5, 10.0))[:2], torch.tensor([1.0, 0.05]))
    assert default_sigma(1024) == 8.0 and default_sigma(48) == 0.5


def test_the_method_uses_the_disparity_it_is_given(textured):
    method = get_method("depth-threshold", threshold=0.25, sigma=1.0)
    assert method.needs_disparity and not method.needs_lens and method.name == "depth-threshold"
    image = textured.astype(np.float32)
    disparity = np.zeros((48, 64), np.float32)
    disparity[:, :32] = 0.9                                 # near: 1 / (1 + 8.1) = 0.11 < 0.25, kept
    out = method.predict(image, disparity=disparity, lens=None, meta={})
    np.testing.assert_array_equal(out[:, :32], image[:, :32])
    assert not np.allclose(out[:, 40:], image[:, 40:])
    # NYU's metric range: disparity 0.3 is 1.5 m there (0.15: kept) but 2.7 m without a range (0.27: blurred)
    flat = np.full((48, 64), 0.3, np.float32)
    np.testing.assert_array_equal(method.predict(image, disparity=flat, meta={"depth_range": (0.5, 10.0)}), image)
    np.testing.assert_array_equal(method.predict(image, disparity=flat, meta={"depth_range": DepthRange(0.5, 10)}),
                                  image)                                     # as lensblur render passes it
    assert not np.allclose(method.predict(image, disparity=flat, meta={}), image)
    with pytest.raises(InputError, match="^disparity: expected a disparity map"):
        method.predict(image, disparity=None, meta={})


def test_options_are_checked_and_refused_by_other_methods():
    with pytest.raises(InputError, match=r"^threshold: expected a normalised depth in \[0, 1\]"):
        DepthThreshold(threshold=1.5)
    with pytest.raises(InputError, match="^sigma: expected a Gaussian standard deviation"):
        get_method("depth-threshold", sigma=0)
    with pytest.raises(InputError, match="^feather: expected a mask softening"):
        get_method("depth-threshold", feather=-1)
    with pytest.raises(InputError, match="^threshold: expected an option that method layered takes"):
        get_method("layered", threshold=0.3)


# --- the command line ------------------------------------------------------------------------------------
def _photo_and_disparity(tmp_path):
    rng = np.random.default_rng(1)
    pixels = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    photo, disp = tmp_path / "photo.png", tmp_path / "d.png"
    Image.fromarray(pixels).save(photo)
    codes = np.zeros((40, 48), np.uint16)
    codes[:, :24] = 60000                                          # near on the left
    Image.fromarray(codes).save(disp)
    return photo, disp, pixels


def test_cli_render_depth_threshold(tmp_path, capsys):
    from lensblur.cli import main

    photo, disp, pixels = _photo_and_disparity(tmp_path)
    out = tmp_path / "out.png"
    assert main(["render", str(photo), "--method", "depth-threshold", "--disparity", str(disp), "--threshold", "0.3",
                 "--threshold-sigma", "1.5", "-o", str(out)]) == 0
    result = np.asarray(Image.open(out))
    np.testing.assert_array_equal(result[:, :24], pixels[:, :24])       # in front: unchanged under a hard mask
    assert np.abs(result[:, 30:].astype(int) - pixels[:, 30:]).mean() > 5
    assert main(["render", str(photo), "--disparity", str(disp), "--threshold", "0.3", "-o", str(out),
                 "--force"]) == 1
    assert "--threshold: expected an option that method layered takes" in capsys.readouterr().err


def test_cli_eval_depth_threshold_on_the_datasets_disparity(tmp_path, capsys):
    from lensblur.cli import main
    from lensblur.synth.dataset import synthesize

    root = tmp_path / "synth"
    synthesize(root, 2, size=(48, 40), seed=5, samples=32, progress=False)
    assert main(["eval", "--method", "depth-threshold", "--dataset", "synth", "--root", str(root), "-o",
                 str(tmp_path / "results"), "--threshold", "0.25", "--format", "json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "depth-threshold" and summary["images"] == 2
    assert (tmp_path / "results" / "synth-depth-threshold-t0.25" / "per_image.csv").is_file()
