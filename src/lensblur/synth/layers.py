"""A synthetic pair's layers, kept beside it: trace the scene again with another lens, or supervise a
layered method.

``layers.npz`` (numpy's compressed archive, read with ``allow_pickle=False``) holds, for layer ``k`` far to
near, on the whole canvas (the frame plus ``margin`` pixels per side, as traced):

``color_KK``
    ``H x W x 3`` float32 premultiplied linear RGB (HDR lights above 1 kept);
``alpha_KK``
    ``H x W`` float32 coverage;
``disparity_KK``
    a 0-d float32 (a flat layer) or an ``H x W`` float32 map (a tilted one), 1 = nearest.

:func:`rerender` traces every pair of a dataset written with ``store_layers=True`` again with another blur,
focus or aperture into a new dataset of the same layout; the all-in-focus image and disparity are the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.files import make_folder
from ..lens import Aperture
from .scene import Scene
from .tracer import Layer, auto_samples, trace

__all__ = ["LAYERS_FILE", "load_layers", "load_scene", "rerender", "save_layers"]

LAYERS_FILE = "layers.npz"
# The canvas' margin must exceed the largest CoC by this much (as make_scene leaves it).
MARGIN_SLACK = 2


def save_layers(path: str | os.PathLike, layers: list[Layer]) -> None:
    """Write ``layers`` (far to near) to ``path`` as the module doc describes."""
    arrays: dict[str, np.ndarray] = {}
    for k, layer in enumerate(layers):
        arrays[f"color_{k:02d}"] = np.asarray(layer.color, dtype=np.float32)
        arrays[f"alpha_{k:02d}"] = np.asarray(layer.alpha, dtype=np.float32)
        d = layer.disparity
        arrays[f"disparity_{k:02d}"] = np.asarray(d, dtype=np.float32)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_layers(path: str | os.PathLike, names: list[str] | None = None) -> list[Layer]:
    """The layers :func:`save_layers` wrote, far to near (``names`` from the pair's ``params.json``).

    Raises:
        InputError: not such a file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("source", expected=f"pairs with their layers ({LAYERS_FILE})", got=f"no {path}",
                         fix="make the dataset with store_layers=True to trace it again")
    with np.load(path, allow_pickle=False) as data:
        count = len([k for k in data.files if re.fullmatch(r"color_\d+", k)])
        layers = []
        for k in range(count):
            d = data[f"disparity_{k:02d}"]
            layers.append(Layer(color=data[f"color_{k:02d}"], alpha=data[f"alpha_{k:02d}"],
                                disparity=float(d) if d.ndim == 0 else d,
                                name=(names or [])[k] if names and k < len(names) else f"layer{k}"))
    return layers


def load_scene(pair: str | os.PathLike) -> Scene:
    """A written pair's scene, as it was traced (lens, aperture, margin, layers).

    Raises:
        InputError: a folder without ``params.json`` or without ``layers.npz``.
    """
    pair = Path(pair)
    if not (pair / "params.json").is_file():
        raise InputError("source", expected="a pair folder with params.json", got=str(pair),
                         fix="point at a dataset written by lensblur synth")
    params = json.loads((pair / "params.json").read_text())
    names = [layer.get("name", "") for layer in params.get("layers", [])]
    aperture = Aperture(**{k: params["aperture"][k] for k in ("blades", "rotation") if k in params["aperture"]})
    return Scene(layers=load_layers(pair / LAYERS_FILE, names), blur=float(params["blur"]),
                 focus_disparity=float(params["focus_disparity"]), aperture=aperture, margin=int(params["margin"]),
                 size=(int(params["size"][0]), int(params["size"][1])), lights=params.get("lights", []),
                 params=params)


def _relensed(scene: Scene, blur: float | None, focus_disparity: float | None, aperture: Aperture | None) -> Scene:
    """``scene`` with the lens changed where asked, checked to fit the canvas."""
    blur = scene.blur if blur is None else float(blur)
    focus = scene.focus_disparity if focus_disparity is None else float(focus_disparity)
    if not blur >= 0:
        raise InputError("blur", expected="a CoC scale in pixels >= 0", got=blur, fix="blur=20")
    if not 0.0 <= focus <= 1.0:
        raise InputError("focus_disparity", expected="a disparity in [0, 1]", got=focus, fix="focus_disparity=0.5")
    reach = max(max(abs(float(np.max(layer.disparity)) - focus), abs(float(np.min(layer.disparity)) - focus))
                for layer in scene.layers)
    limit = scene.margin - MARGIN_SLACK
    if blur * reach > limit:
        raise InputError("blur", expected=f"a largest CoC within the scene's {scene.margin} px canvas margin "
                         f"(at most {limit} px; with this focus, blur <= {limit / max(reach, 1e-9):.3g})",
                         got=f"blur {blur:g}, a CoC of {blur * reach:.1f} px",
                         fix="trace with a smaller blur, or make the dataset again with larger blur")
    params = dict(scene.params, blur=round(blur, 6), focus_disparity=round(focus, 6), max_coc=round(blur * reach, 4))
    # How the scene's own lens was drawn no longer describes a lens given here.
    if focus_disparity is not None:
        params.pop("focus_on", None)
    if blur is not None:
        params.pop("blur_times", None)
    aperture = aperture or scene.aperture
    params["aperture"] = {"blades": aperture.blades, "rotation": aperture.rotation}
    return Scene(layers=scene.layers, blur=blur, focus_disparity=focus, aperture=aperture, margin=scene.margin,
                 size=scene.size, lights=scene.lights, params=params)


def rerender(source: str | os.PathLike, out: str | os.PathLike, *, blur: float | None = None,
             focus_disparity: float | None = None, aperture: Aperture | None = None,
             samples: int | None = None) -> int:
    """Trace every pair of ``source`` (written with ``store_layers=True``) again with another lens.

    Args:
        source: the dataset folder to read.
        out: a new dataset folder (same layout; its manifest names the source and the lens).
        blur: the new CoC scale in pixels, or None to keep each pair's.
        focus_disparity: the new focus, in [0, 1], or None to keep each pair's.
        aperture: the new aperture, or None to keep each pair's.
        samples: aperture samples (None: automatic per scene).

    Returns:
        The number of pairs written.

    Raises:
        InputError: ``out`` is ``source`` or holds files; a pair without its layers; a lens whose largest CoC
            does not fit the scene's canvas margin.
    """
    from .dataset import MANIFEST, PAIRS, _dump, save_pair

    source, out = Path(source), Path(out)
    pairs = sorted(p for p in (source / PAIRS).iterdir() if p.is_dir() and (p / "params.json").is_file()) \
        if (source / PAIRS).is_dir() else []
    if not pairs:
        raise InputError("source", expected="a dataset written by lensblur synth", got=f"no pairs in {source}",
                         fix="pass source=FOLDER, a folder with manifest.json and pairs/")
    if out.resolve() == source.resolve() or (out.exists() and any(out.iterdir())):
        raise InputError("out", expected="a new, empty folder", got=str(out), fix="pass out=FOLDER, a new folder")
    scenes = [_relensed(load_scene(p), blur, focus_disparity, aperture) for p in pairs]   # every check first
    make_folder(out / PAIRS, argument="out")
    manifest = json.loads((source / MANIFEST).read_text()) if (source / MANIFEST).is_file() else {}
    manifest.update(rerendered_from=str(source.resolve()), count=len(pairs),
                    lens={"blur": blur, "focus_disparity": focus_disparity,
                          "aperture": None if aperture is None else {"blades": aperture.blades,
                                                                      "rotation": aperture.rotation}})
    (out / MANIFEST).write_text(_dump(manifest))
    try:
        for pair, scene in zip(pairs, scenes):
            count = samples or auto_samples(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity)
            result = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                           aperture=scene.aperture, samples=count, margin=scene.margin)
            save_pair(out / PAIRS, int(pair.name), scene, result, count, store_layers=True,
                      extra={"rerendered_from": pair.name})
    except BaseException:
        shutil.rmtree(out / PAIRS, ignore_errors=True)
        (out / MANIFEST).unlink(missing_ok=True)
        raise
    return len(pairs)
