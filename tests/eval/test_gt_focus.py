"""The release's ground-truth EBB! focus heuristic (lensblur.eval.gt_focus), on pairs built here whose sharp
layer is known, and its use inside ``evaluate`` only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lensblur.errors import InputError
from lensblur.eval import EvalOptions, Identity, evaluate
from lensblur.eval.gt_focus import GT_FOCUS, ground_truth_edge_focus

N = 96
NEAR, FAR = 0.8, 0.2


def _scene():
    """A textured square (disparity NEAR) on the central 35-65 % of a textured background (FAR)."""
    rng = np.random.default_rng(0)
    blocks = rng.uniform(0.05, 0.9, (N // 4, N // 4, 3)).astype(np.float32)
    background = np.kron(blocks, np.ones((4, 4, 1), np.float32))
    square = np.kron(rng.uniform(0.05, 0.9, (N // 4, N // 4, 3)).astype(np.float32), np.ones((4, 4, 1), np.float32))
    inside = np.zeros((N, N), bool)
    lo, hi = int(0.35 * N), int(0.65 * N)
    inside[lo:hi, lo:hi] = True
    image = np.where(inside[..., None], square, background)
    disparity = np.where(inside, NEAR, FAR).astype(np.float32)
    return image, disparity, inside


def _blurred(image):
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 5)


def test_focus_is_the_layer_sharp_in_both_images():
    image, disparity, inside = _scene()
    # focus on the square: the background is blurred in the target
    near_focus = np.where(inside[..., None], image, _blurred(image))
    assert ground_truth_edge_focus(image, near_focus, disparity) == pytest.approx(NEAR)
    # focus on the background: the square is blurred; the central box has no shared edge, the 40 % box does
    far_focus = np.where(inside[..., None], _blurred(image), image)
    assert ground_truth_edge_focus(image, far_focus, disparity) == pytest.approx(FAR)


def test_no_shared_edge_falls_back_to_the_central_box():
    image, disparity, _ = _scene()
    flat = np.full_like(image, 0.3)
    assert ground_truth_edge_focus(image, flat, disparity) == pytest.approx(NEAR)   # the centre is the square


def test_a_disparity_of_another_size_is_resized_and_bad_shapes_are_refused():
    image, disparity, inside = _scene()
    target = np.where(inside[..., None], image, _blurred(image))
    half = disparity[::2, ::2].copy()
    assert ground_truth_edge_focus(image, target, half) == pytest.approx(NEAR, abs=1e-6)
    with pytest.raises(InputError, match="target"):
        ground_truth_edge_focus(image, target[:-1], disparity)
    with pytest.raises(InputError, match="disparity"):
        ground_truth_edge_focus(image, target, disparity[None])


class _Recorder(Identity):
    name = "recorder"

    def __init__(self):
        self.focus = []

    def predict(self, image, *, disparity=None, lens=None, meta=None):
        self.focus.append(lens.focus_disparity)
        return image


def test_evaluate_renders_with_the_heuristics_focus_not_the_pairs(tmp_path):
    image, disparity, inside = _scene()
    target = np.where(inside[..., None], image, _blurred(image))
    item = {"image": torch.from_numpy(image).permute(2, 0, 1), "target": torch.from_numpy(target).permute(2, 0, 1),
            "disparity": torch.from_numpy(disparity)[None],
            "meta": {"id": "a", "lens": {"blur": 10.0, "focus_disparity": 0.5}}}
    none = {"lpips": "n/a (test)", "dists": "n/a (test)"}
    method = _Recorder()
    summary = evaluate([item], method, tmp_path / "gt", dataset_name="pairs", perceptual=none,
                       options=EvalOptions(progress=False, focus_heuristic=GT_FOCUS))
    assert method.focus == [pytest.approx(NEAR)]
    assert summary["config"]["options"]["focus_heuristic"] == GT_FOCUS
    method = _Recorder()
    summary = evaluate([item], method, tmp_path / "own", dataset_name="pairs", perceptual=none,
                       options=EvalOptions(progress=False))
    assert method.focus == [0.5] and "focus_heuristic" not in summary["config"]["options"]


def test_options_refuse_an_unknown_heuristic_or_two_sources_of_focus():
    with pytest.raises(InputError, match="focus_heuristic"):
        EvalOptions(focus_heuristic="mask")
    with pytest.raises(InputError, match="one source of focus"):
        EvalOptions(focus_heuristic=GT_FOCUS, focus_disparity=0.5)


def test_command_line_names_the_run_for_the_heuristic_and_refuses_a_second_focus(synth_root, tmp_path, capsys):
    import json

    from lensblur.cli import main

    base = ["eval", "--method", "identity", "--dataset", "synth", "--root", str(synth_root), "-o", str(tmp_path / "out"),
            "--quiet", "--focus-heuristic", GT_FOCUS]
    assert main(base) == 0
    (run,) = (tmp_path / "out").glob("*focus-ground-truth-edges*")
    assert json.loads((run / "run.json").read_text())["options"]["focus_heuristic"] == GT_FOCUS
    capsys.readouterr()
    assert main([*base, "--focus-disparity", "0.5"]) == 1
    assert "--focus-heuristic: expected one source of focus" in capsys.readouterr().err
