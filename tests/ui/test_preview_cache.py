"""The preview's shortcuts: what a session keeps between two slider moves gives the very picture ``method.predict``
(what ``lensblur render`` calls) gives, and the display encoder is ``to_srgb8`` within a code."""

from __future__ import annotations

import numpy as np
import pytest
from _ui import png_bytes

from lensblur._convert import image_to_tensor, tensor_to_image, to_srgb8
from lensblur.lens import Lens
from lensblur.render import render
from lensblur.ui.session import Workspace, display_srgb8, shrink


def lit_scene(height: int = 72, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A textured photo with small clipped lights (white discs the highlight recovery raises) far behind a near
    square, and its disparity."""
    rng = np.random.default_rng(3)
    rgb = (rng.random((height, width, 3)) * 120 + 40).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for cy, cx in ((15, 70), (50, 80), (30, 55)):
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 <= 12] = 255
    disparity = np.full((height, width), 0.15, np.float32)
    disparity[20:60, 8:40] = 0.85
    return rgb, disparity


@pytest.fixture
def session(tmp_path):
    workspace = Workspace(preview_pixels=5000, root=tmp_path)      # the 96 x 72 photo shrunk to 82 x 61
    try:
        rgb, disparity = lit_scene()
        made = workspace.new_session()
        photo = workspace.upload_path(made, "photo", "lit.png")
        photo.write_bytes(png_bytes(rgb))
        workspace.add_photo(made, photo, "lit.png")
        maps = workspace.upload_path(made, "disparity", "lit-disparity.png")
        maps.write_bytes(png_bytes(np.round(disparity * 255).astype(np.uint8)))
        made.files["disparity"], made.names["disparity"] = maps, maps.name
        yield workspace, made
    finally:
        workspace.close()
    assert not workspace.folder.exists()


@pytest.mark.parametrize("kind", ["preview", "draft"])
def test_kept_inputs_give_what_predict_gives(session, kind):
    workspace, made = session
    settings = {"focus": {"point": [20, 40]}, "blur": 9, "aperture": "hexagon", "highlights": 0}
    workspace.preview(made, {**settings, "draft": kind == "draft"})
    made.lights[1].result()                             # the search for the lights, started with the depth
    first = workspace.preview(made, {**settings, "draft": kind == "draft"})
    assert first["lights"] == "done"
    depth = made.depth
    assert len(depth.inputs) == 1                       # made once
    args, method, _, lens = workspace._prepare(made, settings)
    image, maps = workspace._arrays(made, depth, kind)
    assert first["size"] == [image.shape[1], image.shape[0]]
    for focus in (0.85, 0.15):                         # two slider moves on the same kept inputs
        moved = Lens(focus_disparity=focus, blur=lens.blur * image.shape[1] / made.width, aperture=lens.aperture)
        kept, provisional = workspace._render(made, args, method, depth, kind, moved)
        assert not provisional
        assert np.array_equal(tensor_to_image(kept), method.predict(image, disparity=maps, lens=moved, meta={}))
    assert len(depth.inputs) == 1


def render_preview(workspace, made, settings, **options):
    args, method, depth, lens = workspace._prepare(made, settings)
    image = workspace._arrays(made, depth, "preview")[0]
    small = Lens(focus_disparity=lens.focus_disparity, blur=lens.blur * image.shape[1] / made.width,
                 aperture=lens.aperture)
    out, provisional = workspace._render(made, args, method, depth, "preview", small, **options)
    return tensor_to_image(out).astype(np.float64), provisional, small


def test_the_previews_lights_carry_the_full_renders_energy(session):
    # The lights are found on the photo at full size (96 x 72); on the preview (82 x 61) their edges are soft and
    # the recovery alone would not find them. The light the recovery adds to the preview, per pixel of the
    # photo, is the light it adds to the full render.
    workspace, made = session
    settings = {"focus": {"point": [20, 40]}, "blur": 9}
    on, provisional, small = render_preview(workspace, made, {**settings, "highlights": 1}, wait=True)
    off, _, _ = render_preview(workspace, made, {**settings, "highlights": 0}, wait=True)
    assert on.shape[:2] == (61, 82) and not provisional
    preview_gain = (on - off).sum() * (96 * 72) / (82 * 61)
    depth = made.depth
    _, _, _, lens = workspace._prepare(made, settings)
    full = {h: render(depth.image, depth.disparity, lens, highlights=h).astype(np.float64) for h in ("auto", "off")}
    full_gain = (full["auto"] - full["off"]).sum()
    assert full_gain > 50                                            # the recovery raised the lights a lot
    assert abs(preview_gain / full_gain - 1) < 0.1, (preview_gain, full_gain)
    image, maps = workspace._arrays(made, depth, "preview")
    lone = render(image, maps, small, highlights="auto").astype(np.float64)     # the shrunk photo's own recovery
    assert (lone - off).sum() < 0.1 * preview_gain


def test_until_the_search_ends_the_preview_is_provisional(session, monkeypatch):
    import threading

    from lensblur.ui import session as ui_session

    workspace, made = session
    release, original = threading.Event(), ui_session._search_lights
    monkeypatch.setattr(ui_session, "_search_lights", lambda image: release.wait(30) and original(image))
    made.lights = None                                   # search again, now through the slow search
    workspace.preview(made, {"blur": 9, "refine": True})
    settings = {"focus": {"point": [20, 40]}, "blur": 9, "refine": True}
    early = workspace.preview(made, settings)
    assert early["lights"] == "searching" and made.depth.inputs == {}
    provisional, flagged, small = render_preview(workspace, made, settings)
    assert flagged
    release.set()
    made.lights[1].result()
    late = workspace.preview(made, settings)
    assert late["lights"] == "done"
    final, flagged, _ = render_preview(workspace, made, settings)
    assert not flagged and made.depth.provisional == {}
    depth = made.depth
    image, maps = workspace._arrays(made, depth, "preview")
    # provisional: the shrunk photo's own recovery (what predict gives); final: the full-size search's
    assert np.array_equal(provisional, render(image, maps, small).astype(np.float64))
    assert (final - provisional).sum() * (96 * 72) / (82 * 61) > 25      # the lights' energy, which it lacked


def test_a_new_strength_needs_no_new_search_and_is_the_recoverys_own(session, monkeypatch):
    from lensblur.render import highlights

    workspace, made = session
    workspace.preview(made, {"blur": 9})
    made.lights[1].result()
    searches = []
    original = highlights.recover_highlights
    monkeypatch.setattr(highlights, "recover_highlights", lambda *a, **k: searches.append(a[1:]) or original(*a, **k))
    for strength in (3, 2, 1.5, 0.5, 2.5):
        workspace.preview(made, {"blur": 9, "highlights": strength})
    assert searches == []                                        # the lights were searched for once, at full size
    assert [key[2] for key in made.depth.inputs] == [2, 1.5, 0.5, 2.5]      # the last four strengths
    # strength 2.5 from the kept search is the recovery's own strength 2.5, shrunk
    depth = made.depth
    x = depth.inputs[("preview", None, 2.5)][0]
    full = tensor_to_image(original(image_to_tensor(depth.image), 2.5))
    expected = shrink(full, x.shape[-2:])
    assert np.abs(tensor_to_image(x) - expected).max() < 1e-5 * max(1.0, float(expected.max()))
    assert float(expected.max()) > 2                              # the lights were raised well above white
    search = made.lights[1]
    workspace.preview(made, {"blur": 9, "refine": True})          # another depth of the same photo
    assert made.depth is not depth and made.lights[1] is search   # ... keeps its search
    assert len(made.depth.inputs) == 1 and searches == []


def test_another_method_is_its_own_predict(session):
    workspace, made = session
    settings = {"method": "depth-threshold", "focus": {"point": [20, 40]}}
    args, method, depth, _ = workspace._prepare(made, settings)
    assert type(method).__name__ == "DepthThreshold"
    out, provisional = workspace._render(made, args, method, depth, "preview", None)
    assert not provisional
    image, maps = workspace._arrays(made, depth, "preview")
    assert np.array_equal(out, method.predict(image, disparity=maps, lens=None, meta=workspace._meta(made, args, depth)))
    assert depth.inputs == {}                       # nothing kept for it
    assert workspace.preview(made, settings)["method"] == "depth-threshold"


def test_display_encoder_is_to_srgb8_within_a_code():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(200_000, dtype=np.float32) * 1.2 - 0.1,
                             np.linspace(0, 1, 70_000, dtype=np.float32)]).reshape(-1, 1, 3)
    exact, table = to_srgb8(values).astype(int), display_srgb8(values).astype(int)
    assert np.abs(exact - table).max() <= 1
    assert (exact != table).mean() < 0.005
    assert display_srgb8(np.array([[[0.0, 1.0, 7.0]]], np.float32)).tolist() == [[[0, 255, 255]]]
