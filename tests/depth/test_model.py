"""Monocular depth models: tiny randomly initialised models of the real classes, saved with save_pretrained.

The reference is the model and image processor called directly (transformers' own post-processing),
followed by the conversion each family's output calls for; ModelDepth must reproduce it.
"""

import numpy as np
import pytest
import torch
import transformers as T

from lensblur.depth import ModelDepth, resolve
from lensblur.errors import InputError, ModelNotFoundError
from lensblur.io import depth_to_disparity

H, W = 30, 40


def _dino(**kw):
    return dict(model_type="dinov2", hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, **kw)


def _build(kind):
    if kind == "dpt":
        cfg = T.DPTConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                          image_size=32, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                          neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8, use_auxiliary_head=False)
        proc = T.DPTImageProcessor(size={"height": 32, "width": 32})
    elif kind in ("depth_anything", "depth_anything_metric"):
        backbone = T.Dinov2Config(**{k: v for k, v in _dino().items() if k != "model_type"}, patch_size=14,
                                  image_size=28, out_indices=[1, 2], reshape_hidden_states=False)
        cfg = T.DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 8], fusion_hidden_size=8,
                                    head_hidden_size=8, reassemble_hidden_size=16, reassemble_factors=[1, 0.5],
                                    patch_size=14, depth_estimation_type="metric" if kind.endswith("metric")
                                    else "relative", max_depth=20)
        proc = T.DPTImageProcessor(size={"height": 28, "width": 28}, ensure_multiple_of=14, keep_aspect_ratio=False)
    elif kind == "zoedepth":
        beit = T.BeitConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                            image_size=32, patch_size=8, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
                            use_relative_position_bias=True)
        cfg = T.ZoeDepthConfig(backbone_config=beit, neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8,
                               bottleneck_features=8, num_relative_features=8, bin_embedding_dim=8,
                               num_attractors=[2, 2, 2, 1], num_patch_transformer_layers=1,
                               patch_transformer_hidden_size=8, patch_transformer_intermediate_size=16,
                               patch_transformer_num_attention_heads=2,
                               bin_configurations=[{"n_bins": 8, "min_depth": 0.001, "max_depth": 10.0,
                                                    "name": "nyu"}])
        proc = T.ZoeDepthImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False,
                                        ensure_multiple_of=8)
    else:
        dino = _dino(patch_size=4, image_size=16)
        cfg = T.DepthProConfig(fusion_hidden_size=8, patch_size=16, intermediate_hook_ids=[1, 0],
                               intermediate_feature_dims=[8, 8], scaled_images_ratios=[0.5, 1],
                               scaled_images_overlap_ratios=[0.0, 0.5], scaled_images_feature_dims=[8, 8],
                               use_fov_model=True, image_model_config=dino, patch_model_config=dino,
                               fov_model_config=dino)
        proc = T.DepthProImageProcessor(size={"height": 32, "width": 32})
    torch.manual_seed(0)
    model = T.AutoModelForDepthEstimation.from_config(cfg).eval()
    with torch.no_grad():  # wider weights than the default init, so that the random output varies
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model, proc


def _reference(model, proc, image):
    from lensblur.color import linear_to_srgb

    pixels = np.round(np.clip(linear_to_srgb(torch.from_numpy(image)).numpy(), 0, 1) * 255).astype(np.uint8)
    with torch.no_grad():
        out = model(**proc(images=pixels, return_tensors="pt"))
    extra = {"source_sizes": [(H, W)]} if isinstance(proc, T.ZoeDepthImageProcessor) else {}
    return proc.post_process_depth_estimation(out, target_sizes=[(H, W)], **extra)[0]["predicted_depth"].numpy()


IMAGE = np.random.default_rng(3).random((H, W, 3)).astype(np.float32)


@pytest.mark.parametrize("kind", ["dpt", "depth_anything"])
def test_relative_models_min_max_inverse_depth(tmp_path, kind):
    model, proc = _build(kind)
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    result = ModelDepth(tmp_path).estimate(IMAGE)
    ref = _reference(model, proc, IMAGE).astype(np.float64)
    expected = (ref - ref.min()) / (ref.max() - ref.min())  # larger output = nearer
    np.testing.assert_allclose(result.disparity, expected, atol=1e-4)
    assert result.depth_range is None and "relative inverse depth" in result.source


@pytest.mark.parametrize("kind", ["zoedepth", "depth_pro", "depth_anything_metric"])
def test_metric_models_convert_depth_exactly(tmp_path, kind):
    model, proc = _build(kind)
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    result = ModelDepth(tmp_path).estimate(IMAGE)
    depth = _reference(model, proc, IMAGE)
    depth = np.maximum(depth, depth[depth > 0].min())  # bicubic resampling may overshoot below 0
    expected, rng = depth_to_disparity(depth)
    np.testing.assert_allclose(result.disparity, expected, atol=1e-4)
    # the model runs in float32: its range agrees with the reference to float32 rounding, not to 1e-6
    assert result.depth_range.near == pytest.approx(rng.near, rel=1e-5)
    assert result.depth_range.far == pytest.approx(rng.far, rel=1e-5)
    # nearer pixels get larger disparity
    i, j = np.unravel_index(depth.argmin(), depth.shape)
    assert result.disparity[i, j] == pytest.approx(1.0, abs=1e-4)


def test_wrong_kind_of_folder(tmp_path):
    T.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16).save_pretrained(
        tmp_path)
    with pytest.raises(InputError, match="'bert' model"):
        ModelDepth(tmp_path).estimate(IMAGE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        ModelDepth(tmp_path / "empty").estimate(IMAGE)


def test_missing_model_names_cache_and_id(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        ModelDepth("depth-anything-v2-small").estimate(IMAGE)
    text = str(info.value)
    assert "models--depth-anything--Depth-Anything-V2-Small-hf" in text
    assert "huggingface-cli download depth-anything/Depth-Anything-V2-Small-hf" in text


def test_auto_uses_the_configured_model(tmp_path, monkeypatch):
    model, proc = _build("dpt")
    model.save_pretrained(tmp_path / "m")
    proc.save_pretrained(tmp_path / "m")
    monkeypatch.setenv("LENSBLUR_DEPTH_MODEL", str(tmp_path / "m"))
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray((IMAGE * 255).astype(np.uint8)).save(photo)
    assert resolve(photo, IMAGE).source.startswith("dpt model")
