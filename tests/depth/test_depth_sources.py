"""Depth sources against independent computations: the phone-depth representations against their
definitions, stereo against Middlebury ground truth, a monocular model class on a tiny random config, the
refinement against a known edge, and the command line with its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import lensblur
from lensblur.cli import main
from lensblur.depth import FileDepth, ModelDepth, refine, resolve
from lensblur.depth.heif import representation_to_disparity
from lensblur.depth.jpeg import range_to_disparity
from lensblur.depth.stereo import stereo_disparity
from lensblur.io import DepthRange


def test_heif_uniform_disparity_is_inverse_depth_between_d_min_and_d_max():
    """Representation 1 stores disparity (1/m) linearly between d_min and d_max (as in an iPhone HEIC)."""
    v = np.linspace(0, 1, 11)
    d, rng = representation_to_disparity(v, {"representation_type": 1, "d_min": 1.498, "d_max": 4.383})
    z = 1.0 / (1.498 + v * (4.383 - 1.498))            # metres, from the definition
    assert rng.near == pytest.approx(1 / 4.383) and rng.far == pytest.approx(1 / 1.498)
    np.testing.assert_allclose(d, [rng.disparity(float(x)) for x in z], atol=1e-6)


def test_heif_uniform_z_becomes_disparity_through_inverse_depth():
    v = np.linspace(0, 1, 11)
    d, rng = representation_to_disparity(v, {"representation_type": 2, "z_near": 0.5, "z_far": 4.0})
    z = 0.5 + v * 3.5
    np.testing.assert_allclose(d, (1 / z - 1 / 4.0) / (1 / 0.5 - 1 / 4.0), atol=1e-6)
    assert (rng.near, rng.far) == (0.5, 4.0)


def test_heif_unconvertible_representation_is_a_clear_error():
    with pytest.raises(lensblur.InputError, match="types 0, 1, 2"):
        representation_to_disparity(np.zeros(3), {"representation_type": 3})
    with pytest.raises(lensblur.InputError, match="z_near and z_far"):
        representation_to_disparity(np.zeros(3), {"representation_type": 2})


def test_google_depth_formats():
    """GDepth/Dynamic Depth: RangeInverse stores 1/z linearly (near = 0), RangeLinear stores z linearly."""
    v = np.linspace(0, 1, 11)
    near, far = 0.4, 6.0
    inverse = range_to_disparity(v, format="RangeInverse", near=near, far=far)
    np.testing.assert_allclose(inverse, 1 - v, atol=1e-6)
    linear = range_to_disparity(v, format="RangeLinear", near=near, far=far)
    z = near + v * (far - near)
    np.testing.assert_allclose(linear, [DepthRange(near, far).disparity(float(x)) for x in z], atol=1e-6)
    with pytest.raises(lensblur.InputError, match="RangeInverse or RangeLinear"):
        range_to_disparity(v, format="Mystery", near=near, far=far)


@pytest.mark.slow
def test_stereo_on_middlebury_motorcycle_against_ground_truth():
    """Bad-pixel rate (error > 2 px) and end-point error on the pixels with ground truth, with the search
    range bench/depth_stereo.py uses (64 px; the pair's disparities are 7-60 px), where it reports 10.7% and
    1.51 px for the filled map."""
    from skimage import data

    left, right, truth = data.stereo_motorcycle()
    estimate = stereo_disparity(left, right, max_disparity=64)
    valid = np.isfinite(truth)
    error = np.abs(estimate - truth)[valid]
    assert (error > 2).mean() < 0.15
    assert error.mean() < 2.0
    with pytest.raises(lensblur.InputError, match="right view of the left view's size"):
        stereo_disparity(left, right[:-8])


@pytest.mark.slow
def test_stereo_search_range_is_estimated_from_the_pair():
    """Without ``max_disparity`` the range comes from the pair: it must cover the true largest disparity
    (60 px) without searching the quarter width (192 px), which bench/depth_stereo.py shows triples the
    bad-pixel rate (30.4%)."""
    from skimage import data

    from lensblur.depth.stereo import search_range

    left, right, truth = data.stereo_motorcycle()
    estimated = search_range(left, right)
    assert 64 <= estimated <= 128 and estimated % 16 == 0
    error = np.abs(stereo_disparity(left, right) - truth)[np.isfinite(truth)]
    assert (error > 2).mean() < 0.15


def _tiny_dpt(folder):
    import transformers  # the [depth] extra, which make test installs
    config = transformers.DPTConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37, image_size=32,
        patch_size=8, neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16, backbone_out_indices=[0, 1, 2, 3],
        reassemble_factors=[4, 2, 1, 0.5], is_hybrid=False, head_in_index=-1,
    )
    import torch

    torch.manual_seed(0)
    transformers.DPTForDepthEstimation(config).save_pretrained(folder)
    transformers.DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)


def test_monocular_model_from_a_folder_gives_relative_disparity_of_the_photo_size(tmp_path):
    """A tiny random DPT saved in the test (no weights exist here): the plumbing, not the depth quality."""
    _tiny_dpt(tmp_path / "dpt")
    image = np.random.default_rng(0).random((24, 40, 3)).astype(np.float32)
    result = ModelDepth(tmp_path / "dpt").estimate(image)
    assert result.disparity.shape == (24, 40)
    assert result.disparity.min() == pytest.approx(0.0) and result.disparity.max() == pytest.approx(1.0)
    assert result.depth_range is None and "relative inverse depth" in result.source


def test_missing_model_names_where_it_looked(tmp_path):
    image = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(lensblur.ModelNotFoundError) as info:
        ModelDepth(tmp_path / "no-such-model").estimate(image)
    assert str(tmp_path / "no-such-model") in str(info.value)


def test_refinement_snaps_a_blurred_depth_edge_to_the_photo_edge():
    """A sharp colour edge at column 32 and a disparity step blurred over 8 px: refining brings the map's
    edge back to the photo's."""
    image = np.zeros((48, 64, 3), np.float32)
    image[:, 32:] = [0.8, 0.6, 0.2]
    truth = np.zeros((48, 64), np.float32)
    truth[:, 32:] = 0.8
    blurred = np.clip(np.convolve(truth[0], np.ones(9) / 9, mode="same"), 0, 1)
    degraded = np.repeat(blurred[None], 48, axis=0).astype(np.float32)
    refined = refine(image, degraded)
    band = slice(24, 40)
    assert np.abs(refined[:, band] - truth[:, band]).mean() < 0.5 * np.abs(degraded[:, band] - truth[:, band]).mean()


def test_resolve_order_and_messages(tmp_path):
    image = np.random.default_rng(1).random((16, 20, 3)).astype(np.float32)
    photo = tmp_path / "photo.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(photo)
    with pytest.raises(lensblur.InputError, match="^source: .*disparity_path=FILE"):
        resolve(photo, image)                                   # nothing to go on: lists the ways
    disp = tmp_path / "d.png"
    Image.fromarray(np.full((16, 20), 40000, np.uint16)).save(disp)
    result = resolve(photo, image, disparity_path=disp)
    np.testing.assert_allclose(result.disparity, 40000 / 65535, atol=1e-6)
    assert isinstance(FileDepth(disp), FileDepth)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mask)
    with pytest.raises(lensblur.InputError, match="mask"):
        resolve(photo, image, source="subject", mask=mask)      # a mask of another size


def test_depth_command_writes_map_and_preview_and_refuses_a_photo_without_depth(tmp_path, capsys):
    image = (np.random.default_rng(2).random((16, 20, 3)) * 255).astype(np.uint8)
    photo = tmp_path / "photo.png"
    Image.fromarray(image).save(photo)
    disp = tmp_path / "d.png"
    Image.fromarray(np.full((16, 20), 30000, np.uint16)).save(disp)
    code = main(["depth", str(photo), "--disparity", str(disp), "-o", str(tmp_path / "out.png"),
                 "--preview", str(tmp_path / "preview.png")])
    assert code == 0 and (tmp_path / "out.png").is_file() and (tmp_path / "preview.png").is_file()
    np.testing.assert_allclose(lensblur.read_disparity(tmp_path / "out.png"), 30000 / 65535, atol=2e-5)
    capsys.readouterr()
    code = main(["depth", str(photo), "--depth-from", "embedded", "-o", str(tmp_path / "none.png")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("lensblur depth: error:") and "Traceback" not in err
    assert not (tmp_path / "none.png").exists()


def test_portrait_mode_focuses_on_the_subject_by_default(tmp_path, capsys):
    """With depth from a subject mask and no focus given, the subject (disparity 1) is the focal plane: its
    pixels come out as they went in while the background blurs; the report names the choice."""
    rng = np.random.default_rng(5)
    photo = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    mask = np.zeros((40, 48), np.uint8)
    mask[8:32, 10:26] = 255              # the subject, off the frame's centre (24, 20)
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / "out.png"
    code = main(["render", str(tmp_path / "p.png"), "--depth-from", "subject", "--mask", str(tmp_path / "m.png"),
                 "--blur", "8", "-o", str(out)])
    assert code == 0 and "the subject" in capsys.readouterr().out
    result = np.asarray(Image.open(out)).astype(int)
    inner = (slice(12, 28), slice(14, 22))
    assert np.abs(result[inner] - photo[inner].astype(int)).max() <= 1
    assert np.abs(result[:, 34:] - photo[:, 34:].astype(int)).mean() > 10


def test_any_object_following_the_protocol_is_a_source(tmp_path):
    """A depth network trained elsewhere plugs in as an object with estimate(image) -> DepthResult."""
    from lensblur.depth import DepthResult

    class Ramp:
        name = "ramp"

        def estimate(self, image):
            h, w = image.shape[:2]
            ramp = np.repeat(np.linspace(0, 1, w, dtype=np.float32)[None], h, axis=0)
            return DepthResult(disparity=ramp, depth_range=None, source="a ramp", focus=0.25)

    image = np.zeros((6, 10, 3), np.float32)
    result = resolve(None, image, source=Ramp(), refine=False)
    assert result.source == "a ramp" and result.focus == 0.25 and result.disparity[0, -1] == 1.0
    with pytest.raises(lensblur.InputError, match="source"):
        resolve(None, image, source=42)
