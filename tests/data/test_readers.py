"""Dataset readers on tiny fake trees built here: layout, item contents, splits and layout errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lensblur.color import linear_to_srgb
from lensblur.data import BLB, EBB, HELDOUT_IDS, EBBVal294, NYUDepthV2, SynthDataset, open_dataset
from lensblur.data.ebb import HELDOUT_SEED, VAL294_FIRST
from lensblur.data.nyu import depth_to_fixed_disparity
from lensblur.errors import InputError
from lensblur.io import write_image
from lensblur.io.pfm import write_pfm

H, W = 12, 16


def _img(rng, scale=1.0):
    return (rng.uniform(0.05, 0.9, (H, W, 3)) * scale).astype(np.float32)


def _png8(path: Path, linear: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, linear)


# ---------------------------------------------------------------------------------------------- EBB!
def _ebb_tree(root: Path, ids, rng, *, with_val=True, train="Training", val="Validation") -> None:
    """An AIM 2020 tree as distributed (capitalised folders) unless other folder names are given."""
    for i in ids:
        _png8(root / train / "original" / f"{i}.png", _img(rng))
        _png8(root / train / "bokeh" / f"{i}.png", _img(rng, 0.5))
    if with_val:
        for i in range(3):
            _png8(root / val / "original" / f"{i}.png", _img(rng))


def test_heldout_list_is_the_seeded_draw_it_documents_and_misses_val294():
    """The recorded list is ``sorted(default_rng(20200).choice(4400, 100, replace=False))``: ids 0..4399 only."""
    drawn = sorted(np.random.default_rng(HELDOUT_SEED).choice(4400, size=100, replace=False).tolist())
    assert list(HELDOUT_IDS) == drawn
    assert len(set(HELDOUT_IDS)) == 100 and max(HELDOUT_IDS) < VAL294_FIRST


@pytest.mark.parametrize(("train", "val"), [("Training", "Validation"), ("train", "validation"),
                                            ("TRAINING", "val")])
def test_ebb_folder_names_in_any_case(tmp_path, rng, train, val):
    _ebb_tree(tmp_path, [3, VAL294_FIRST], rng, train=train, val=val)
    assert len(EBB(tmp_path, "heldout")) == 1 and len(EBBVal294(tmp_path)) == 1
    assert EBB(tmp_path, "val")[0]["meta"]["release"] == "aim2020"


def _ebb_paper_tree(root: Path, ids, rng) -> None:
    """The EBB! paper's own release: train/original, train/original_depth (8-bit), train/bokeh."""
    for i in ids:
        _png8(root / "train" / "original" / f"{i}.jpg", _img(rng))
        _png8(root / "train" / "bokeh" / f"{i}.jpg", _img(rng, 0.5))
        depth = root / "train" / "original_depth" / f"{i}.png"
        depth.parent.mkdir(exist_ok=True)
        Image.fromarray(np.tile(np.arange(W) * 10 + 40, (H, 1)).astype(np.uint8)).save(depth)


def test_ebb_paper_release_refuses_val294_and_uses_its_depth(tmp_path, rng):
    _ebb_paper_tree(tmp_path, [3, VAL294_FIRST, 4800], rng)
    with pytest.raises(InputError, match=r"^split: expected val294 on the AIM 2020 release.*ids up to 4800"):
        EBBVal294(tmp_path)
    held = EBB(tmp_path, "heldout")
    assert held.release == "ebb-paper" and len(held) == 1
    item = held[0]
    # the shipped 8-bit map, rescaled to [0, 1] per image (larger = nearer)
    np.testing.assert_allclose(item["disparity"][0, 0].numpy(), np.linspace(0, 1, W), atol=1e-6)
    assert item["meta"]["disparity_path"].endswith("original_depth/3.png")


def test_ebb_train_split_warns_that_it_holds_val294(tmp_path, rng, caplog):
    _ebb_tree(tmp_path, [1, VAL294_FIRST], rng, with_val=False)
    with caplog.at_level("WARNING", logger="lensblur.data.ebb"):
        EBB(tmp_path, "train")
    assert "must not be scored on ebb-val294" in caplog.text


def test_ebb_splits_partition_the_training_pairs(tmp_path, rng):
    held = list(HELDOUT_IDS[:3])
    ids = [0, 1, 2, 4, 5, VAL294_FIRST - 1, VAL294_FIRST, 4693] + held
    _ebb_tree(tmp_path, ids, rng)
    train = EBB(tmp_path, "train")
    heldout = EBB(tmp_path, "heldout")
    train_ids = {train[i]["meta"]["id"] for i in range(len(train))}
    heldout_ids = {heldout[i]["meta"]["id"] for i in range(len(heldout))}
    assert heldout_ids == {str(i) for i in held}
    assert train_ids.isdisjoint(heldout_ids)
    assert train_ids | heldout_ids == {str(i) for i in ids}
    assert [int(EBB(tmp_path, "test")[i]["meta"]["id"]) for i in range(len(heldout))] == sorted(held)
    val294 = EBBVal294(tmp_path)
    assert sorted(int(val294[i]["meta"]["id"]) for i in range(len(val294))) == [VAL294_FIRST, 4693]
    t294 = EBB(tmp_path, "train294")
    assert max(int(p.stem) for p, _ in t294.pairs) == VAL294_FIRST - 1
    assert len(t294) + len(val294) == len(ids)


def test_ebb_item_layout_and_values(tmp_path, rng):
    source = _img(rng)
    _png8(tmp_path / "Training" / "original" / "7.png", source)
    _png8(tmp_path / "Training" / "bokeh" / "7.png", source * 0.5)
    item = EBB(tmp_path, "train")[0]
    assert set(item) == {"image", "target", "meta"}
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    # 8-bit sRGB round trip: the linear values come back within the quantisation step
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), source, atol=6e-3)
    assert item["meta"]["id"] == "7" and item["meta"]["release"] == "aim2020"


def test_ebb_validation_without_targets_and_numeric_order(tmp_path, rng):
    for i in (10, 2, 1):
        _png8(tmp_path / "validation" / "original" / f"{i}.png", _img(rng))
    _png8(tmp_path / "train" / "original" / "0.png", _img(rng))
    _png8(tmp_path / "train" / "bokeh" / "0.png", _img(rng))
    val = EBB(tmp_path, "val")
    assert [val[i]["meta"]["id"] for i in range(3)] == ["1", "2", "10"]
    assert "target" not in val[0]
    with pytest.raises(InputError, match="align_exposure"):
        EBB(tmp_path, "val", align_exposure=True)


def test_ebb_linear_mean_alignment_matches_global_means(tmp_path, rng):
    _ebb_tree(tmp_path, [VAL294_FIRST + 1], rng, with_val=False)
    plain = EBBVal294(tmp_path)[0]
    aligned = EBBVal294(tmp_path, align_exposure="linear-mean")[0]
    assert float(aligned["image"].mean()) == pytest.approx(float(aligned["target"].mean()), rel=1e-5)
    scale = aligned["meta"]["exposure_scale"]
    assert scale == pytest.approx(float(plain["target"].double().mean() / plain["image"].double().mean()), rel=1e-6)
    torch.testing.assert_close(aligned["image"], plain["image"] * scale)


def test_ebb_bokehdiff_alignment_is_per_channel_on_file_values_and_clipped(tmp_path, rng):
    """BokehDiff's released protocol, computed by hand on the 8-bit files: per channel, factor
    mean(target) / mean(input) on codes / 255, the scaled input clipped to [0, 1]."""
    _ebb_tree(tmp_path, [VAL294_FIRST + 1], rng, with_val=False)
    source = np.asarray(Image.open(tmp_path / "Training" / "original" / f"{VAL294_FIRST + 1}.png"), np.float64) / 255
    bokeh = np.asarray(Image.open(tmp_path / "Training" / "bokeh" / f"{VAL294_FIRST + 1}.png"), np.float64) / 255
    source[0, 0] = 1.0      # a white pixel goes over 1 when brightened: it must be clipped
    Image.fromarray(np.round(source * 255).astype(np.uint8)).save(tmp_path / "Training" / "original" / "4401.png")
    source = np.asarray(Image.open(tmp_path / "Training" / "original" / "4401.png"), np.float64) / 255
    factor = bokeh.mean(axis=(0, 1)) / source.mean(axis=(0, 1))
    expected = np.clip(source * factor, 0, 1)
    for protocol in (True, "bokehdiff"):
        item = EBBVal294(tmp_path, align_exposure=protocol)[0]
        shown = linear_to_srgb(item["image"]).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(shown, expected, atol=2e-6)
        np.testing.assert_allclose(item["meta"]["exposure_scale"], factor, rtol=1e-5)
        assert item["meta"]["exposure_alignment"] == "bokehdiff"
    with pytest.raises(InputError, match="^align_exposure: expected False, True or one of bokehdiff, linear-mean"):
        EBBVal294(tmp_path, align_exposure="mean")


def test_ebb_disparity_dir(tmp_path, rng):
    _ebb_tree(tmp_path, [5], rng, with_val=False)
    with pytest.raises(InputError, match="disparity_dir"):
        EBB(tmp_path, "train", disparity_dir=tmp_path / "nope")
    maps = tmp_path / "maps"
    maps.mkdir()
    ramp = np.tile(np.linspace(0, 1, W, dtype=np.float32), (H, 1))
    np.save(maps / "5.npy", ramp)
    item = EBB(tmp_path, "train", disparity_dir=maps)[0]
    assert item["disparity"].shape == (1, H, W)
    np.testing.assert_allclose(item["disparity"][0].numpy(), ramp)
    os.remove(maps / "5.npy")
    with pytest.raises(InputError, match="5.png"):
        EBB(tmp_path, "train", disparity_dir=maps)[0]


def test_ebb_wrong_root_names_the_layout(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(InputError, match=r"Training/original/0\.jpg") as info:
        EBB(tmp_path, "train")
    assert "no images in Training/original/" in str(info.value)
    with pytest.raises(InputError, match="not an existing folder"):
        EBB(tmp_path / "missing")
    with pytest.raises(InputError, match="split"):
        EBB(tmp_path, "validation")


# ---------------------------------------------------------------------------------------------- BLB
def _blb_scene(folder: Path, rng, ks, zs, depth):
    """A BLB scene with linear PFM files standing in for the release's EXR files (same values: linear float;
    the OpenCV build of the test machine may lack the EXR codec, which lensblur.io relies on)."""
    folder.mkdir(parents=True)
    (folder / "info.json").write_text(json.dumps({"blur_parameters": ks, "focus_distances": zs}))
    write_image(folder / "image.pfm", _img(rng))
    write_pfm(folder / "depth.pfm", np.repeat(depth[..., None], 3, axis=2))
    for i in range(len(ks)):
        for j in range(len(zs)):
            write_image(folder / f"bokeh_{i:02d}_{j:02d}.pfm", _img(rng))


def test_blb_jpg_web_copy_says_it_lacks_depth_and_where_the_exr_release_is(tmp_path, rng):
    scene = tmp_path / "277"
    scene.mkdir()
    (scene / "info.json").write_text(json.dumps({"blur_parameters": [10.0], "focus_distances": [20.0]}))
    _png8(scene / "image.jpg", _img(rng))
    _png8(scene / "bokeh_00_00.jpg", _img(rng))
    with pytest.raises(InputError, match=r"^root: expected BLB's EXR release.*the JPG web copy.*BokehMe's README"):
        BLB(tmp_path)


def test_blb_items_keep_bokehme_defocus_exactly(tmp_path, rng):
    ks = [10.0, 20.0, 40.0, 80.0, 160.0]
    zs = [65504.0, 40.0, 20.0]
    depth = np.full((H, W), 65504.0, np.float32)
    depth[:, W // 2:] = 16.0
    depth[2:5, 2:5] = 25.0
    _blb_scene(tmp_path / "data" / "277", rng, ks, zs, depth)
    ds = BLB(tmp_path)
    assert len(ds) == 15
    level5 = BLB(tmp_path, level=5)
    assert len(level5) == 3 and {level5[i]["meta"]["level"] for i in range(3)} == {5}
    item = BLB(tmp_path, level=4, focus=3)[0]
    lens = item["meta"]["lens"]
    d = item["disparity"][0].numpy().astype(np.float64)
    coc = lens["blur"] * (d - lens["focus_disparity"])
    expected = 80.0 * (1.0 / depth.astype(np.float64) - 1.0 / 20.0)
    np.testing.assert_allclose(coc, expected, rtol=1e-5, atol=1e-5)
    assert 0.0 <= d.min() and d.max() <= 1.0
    assert item["meta"]["id"] == "277_L4_F3"
    # EXR holds linear values: the item is the file's values as they are
    assert item["image"].shape == (3, H, W) and float(item["image"].max()) <= 0.9 + 1e-6


def test_blb_wrong_root(tmp_path, rng):
    with pytest.raises(InputError, match="info.json"):
        BLB(tmp_path)
    scene = tmp_path / "3"
    scene.mkdir()
    (scene / "info.json").write_text(json.dumps({"blur_parameters": [1.0], "focus_distances": [2.0]}))
    with pytest.raises(InputError, match="image.exr is missing"):
        BLB(tmp_path)
    with pytest.raises(InputError, match="level"):
        BLB(tmp_path, level=6)


# ---------------------------------------------------------------------------------------------- NYU
def test_nyu_labeled_mat_through_h5py(tmp_path, rng):
    import h5py

    n = 3
    images = rng.integers(0, 256, (n, 3, W, H), dtype=np.uint8)  # MATLAB 480x640x3xN as h5py sees it
    depths = rng.uniform(0.7, 9.0, (n, W, H)).astype(np.float32)
    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = images
        f["depths"] = depths
    ds = NYUDepthV2(tmp_path)
    assert len(ds) == n
    item = ds[1]
    assert set(item) == {"image", "disparity", "meta"}
    assert item["image"].shape == (3, H, W) and item["disparity"].shape == (1, H, W)
    from lensblur.color import linear_to_srgb

    encoded = linear_to_srgb(item["image"]).numpy() * 255.0
    np.testing.assert_allclose(encoded, images[1].transpose(0, 2, 1).astype(np.float64), atol=1e-3)
    depth = depths[1].T
    expected = (1 / depth - 1 / 10.0) / (1 / 0.5 - 1 / 10.0)
    np.testing.assert_allclose(item["disparity"][0].numpy(), expected, rtol=1e-5)
    # the nearest pixel has the largest disparity
    iy, ix = np.unravel_index(np.argmin(depth), depth.shape)
    assert item["disparity"][0, iy, ix] == item["disparity"].max()
    with pytest.raises(InputError, match="splits.mat"):
        NYUDepthV2(tmp_path, split="test")


def test_nyu_splits_mat(tmp_path, rng):
    import h5py
    import scipy.io

    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = rng.integers(0, 256, (4, 3, W, H), dtype=np.uint8)
        f["depths"] = rng.uniform(1, 5, (4, W, H)).astype(np.float32)
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [3]]), "testNdxs": np.array([[2], [4]])})
    test = NYUDepthV2(tmp_path, split="test")
    assert [test[i]["meta"]["index"] for i in range(len(test))] == [1, 3]


def _densedepth_export(root: Path, rng, *, csv: bool) -> tuple[np.ndarray, np.ndarray]:
    """DenseDepth's nyu_data.zip as unpacked: data/nyu2_train/SCENE/N.jpg + N.png (8-bit depth, 255 = 10 m),
    data/nyu2_test/NNNNN_colors.png + NNNNN_depth.png (16-bit millimetres), and the two CSV lists."""
    data = root / "data"
    depth8 = rng.integers(1, 255, (H, W)).astype(np.uint8)
    depth16 = rng.integers(800, 5000, (H, W)).astype(np.uint16)
    train_lines = []
    for scene, n in (("kitchen_0001_out", 7), ("bedroom_0002_out", 3)):
        folder = data / "nyu2_train" / scene
        _png8(folder / f"{n}.jpg", _img(rng))
        Image.fromarray(depth8).save(folder / f"{n}.png")
        train_lines.append(f"data/nyu2_train/{scene}/{n}.jpg,data/nyu2_train/{scene}/{n}.png")
    _png8(data / "nyu2_test" / "00000_colors.png", _img(rng))
    Image.fromarray(depth16).save(data / "nyu2_test" / "00000_depth.png")
    if csv:
        (data / "nyu2_train.csv").write_text("\n".join(train_lines) + "\n")
        (data / "nyu2_test.csv").write_text("data/nyu2_test/00000_colors.png,data/nyu2_test/00000_depth.png\n")
    return depth8, depth16


@pytest.mark.parametrize("csv", [True, False])
def test_nyu_densedepth_export_reads_each_half_at_its_own_depth_scale(tmp_path, rng, csv):
    depth8, depth16 = _densedepth_export(tmp_path, rng, csv=csv)
    train = NYUDepthV2(tmp_path, split="train")
    ids = [train[i]["meta"]["id"] for i in range(len(train))]
    # the CSV's order when it is there, else scene folders in order
    assert ids == (["kitchen_0001_out/7", "bedroom_0002_out/3"] if csv else ["bedroom_0002_out/3", "kitchen_0001_out/7"])
    item = train[0]
    assert item["meta"]["depth_scale"] == pytest.approx(10 / 255)   # 8-bit: 255 = 10 m, never millimetres
    np.testing.assert_allclose(item["disparity"][0].numpy(),
                               depth_to_fixed_disparity(depth8.astype(np.float32) * np.float32(10 / 255), 0.5, 10.0),
                               rtol=1e-6)
    test = NYUDepthV2(tmp_path / "data", split="test")
    assert len(test) == 1 and test[0]["meta"]["id"] == "00000" and test[0]["meta"]["depth_scale"] == 0.001
    np.testing.assert_allclose(test[0]["disparity"][0].numpy(),
                               depth_to_fixed_disparity(depth16 * np.float32(0.001), 0.5, 10.0), rtol=1e-6)
    assert len(NYUDepthV2(tmp_path)) == 3
    forced = NYUDepthV2(tmp_path, split="test", depth_scale=0.0001)[0]
    assert forced["meta"]["depth_scale"] == 0.0001


def test_nyu_densedepth_csv_naming_a_missing_file(tmp_path, rng):
    _densedepth_export(tmp_path, rng, csv=True)
    (tmp_path / "data" / "nyu2_train" / "kitchen_0001_out" / "7.png").unlink()
    with pytest.raises(InputError, match=r"^root: expected the files nyu2_train.csv lists.*kitchen_0001_out/7.png"):
        NYUDepthV2(tmp_path, split="train")


def test_nyu_png_exports(tmp_path, rng):
    import cv2

    depth_mm = rng.integers(800, 5000, (H, W)).astype(np.uint16)
    depth_mm[0, 0] = 0  # a hole
    a = tmp_path / "a"
    _png8(a / "rgb" / "0001.png", _img(rng))
    (a / "depth").mkdir()
    cv2.imwrite(str(a / "depth" / "0001.png"), depth_mm)
    b = tmp_path / "b"
    _png8(b / "00000_colors.png", _img(rng))
    cv2.imwrite(str(b / "00000_depth.png"), depth_mm)
    for root, ident in ((a, "0001"), (b, "00000")):
        item = NYUDepthV2(root)[0]
        assert item["meta"]["id"] == ident and item["meta"]["holes"] == 1
        np.testing.assert_allclose(item["disparity"][0].numpy(),
                                   depth_to_fixed_disparity(depth_mm * 0.001, 0.5, 10.0), rtol=1e-6)
        assert float(item["disparity"][0, 0, 0]) == 0.0
    with pytest.raises(InputError, match="NAME_colors.png"):
        NYUDepthV2(tmp_path / "a" / "rgb")


# ---------------------------------------------------------------------------------------------- synth
def make_synth_tree(root: Path, rng, count=2, *, incomplete=True) -> None:
    """A tiny tree in the SYNTH_LAYOUT contract (as ``lensblur synth`` writes it)."""
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"generator": "lensblur.synth", "generator_version": "1",
                                                    "seed": 7, "size": [W, H], "count": count}))
    for k in range(count):
        pair = root / "pairs" / f"{k:06d}"
        pair.mkdir(parents=True)
        image, target = _img(rng), _img(rng, 0.8)
        for stem, arr in (("image", image), ("target", target)):
            write_image(pair / f"{stem}.png", arr)
            write_image(pair / f"{stem}16.png", arr, bits=16)
            write_image(pair / f"{stem}.pfm", arr)
        disp = np.zeros((H, W), np.uint16)
        disp[:, W // 2:] = 65535
        cv2.imwrite(str(pair / "disparity.png"), disp)
        (pair / "params.json").write_text(json.dumps({"index": k, "seed": 7, "blur": 3.0 + k, "focus_disparity": 1.0,
                                                      "aperture": {"blades": 6, "rotation": 0.1}, "layers": [],
                                                      "lights": [], "samples": 64, "size": [W, H]}))
    if incomplete:
        (root / "pairs" / ".000009.tmp-ab12").mkdir()
        (root / "pairs" / "000010").mkdir()  # no params.json yet


def test_synth_reads_complete_pairs_only(tmp_path, rng):
    make_synth_tree(tmp_path, rng)
    ds = SynthDataset(tmp_path)
    assert len(ds) == 2
    item = ds[1]
    assert set(item) == {"image", "target", "disparity", "meta"}
    assert item["meta"]["lens"] == {"blur": 4.0, "focus_disparity": 1.0, "aperture": {"blades": 6, "rotation": 0.1}}
    assert float(item["disparity"][0, 0, 0]) == 0.0 and float(item["disparity"][0, 0, -1]) == 1.0
    pfm = SynthDataset(tmp_path, encoding="pfm")[1]
    np.testing.assert_allclose(item["image"].numpy(), pfm["image"].numpy(), atol=2e-4)  # 16-bit vs float


def test_synth_wrong_root(tmp_path, rng):
    with pytest.raises(InputError, match="manifest.json is missing"):
        SynthDataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "pairs").mkdir()
    with pytest.raises(InputError, match="no complete pair"):
        SynthDataset(tmp_path)


def test_open_dataset_by_name(tmp_path, rng):
    make_synth_tree(tmp_path, rng, count=1, incomplete=False)
    assert len(open_dataset("synth", tmp_path)) == 1
    with pytest.raises(InputError, match="^name: expected one of .*name=synth"):
        open_dataset("imagenet", tmp_path)
    with pytest.raises(InputError, match=r"^level: expected an option the synth reader takes \(encoding\), got level=3"):
        open_dataset("synth", tmp_path, level=3)
    missing = tmp_path / "no-such-folder"
    with pytest.raises(InputError, match="^root: expected a lensblur synth folder"):
        open_dataset("synth", missing)
    with pytest.raises(InputError, match="(?s)^val_root: expected a lensblur synth folder.*Fix: pass val_root=FOLDER"):
        open_dataset("synth", missing, root_argument="val_root")      # a second folder, named as its caller's


# ---------------------------------------------------------------------------------------------- verify
def test_verify_counts_pairs_and_sizes_against_the_release(tmp_path, rng):
    from lensblur.data import verify

    _ebb_tree(tmp_path, [0, 1, 2, VAL294_FIRST], rng)
    (tmp_path / "Training" / "bokeh" / "2.png").unlink()                      # an input without a target
    _png8(tmp_path / "Training" / "bokeh" / "9.png", _img(rng))                # a target without an input
    write_image(tmp_path / "Training" / "bokeh" / "1.png", np.zeros((H + 2, W, 3), np.float32))  # sizes differ
    report = verify("ebb", tmp_path)
    assert report.release == "aim2020" and not report.ok
    counts = {c.what: (c.found, c.expected) for c in report.counts}
    assert counts["training inputs"] == (4, 4694) and counts["training targets"] == (4, 4694)
    assert counts["Val294 pairs (ids 4400..4693)"] == (1, 294)
    assert counts["validation inputs"] == (3, 200)
    assert report.problems == ["1 training inputs without a target: 2.png", "1 training targets without an input: 9.png",
                               "1 training pairs of different sizes: 1.png (16x12 vs 16x14)"]
    text = report.as_text()
    assert "training inputs: 4 of 4694  <- differs" in text and text.endswith("NOT as the release holds it\n")
    assert report.as_dict()["ok"] is False


def test_verify_densedepth_and_blb_web_copy(tmp_path, rng):
    from lensblur.data import verify

    _densedepth_export(tmp_path / "nyu", rng, csv=False)
    report = verify("nyu", tmp_path / "nyu")
    assert report.release == "densedepth" and not report.problems
    assert {c.what: (c.found, c.expected) for c in report.counts} == {"nyu2_train pairs": (2, 50688),
                                                                      "nyu2_test pairs": (1, 654)}
    scene = tmp_path / "blb" / "277"
    scene.mkdir(parents=True)
    (scene / "info.json").write_text(json.dumps({"blur_parameters": [10.0], "focus_distances": [20.0]}))
    _png8(scene / "image.jpg", _img(rng))
    report = verify("blb", tmp_path / "blb")
    assert "1 scenes of the JPG web copy (no depth; get the EXR release): 277" in report.problems
    with pytest.raises(InputError, match="^name: expected one of ebb"):
        verify("imagenet", tmp_path)
