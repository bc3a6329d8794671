"""lensblur's own synthetic pairs, as written by ``lensblur synth``::

    ROOT/manifest.json                 {"generator": "lensblur.synth", "generator_version", "count", ...}
    ROOT/pairs/000000/image.png        all-in-focus, 8-bit sRGB (image16.png 16-bit, image.pfm linear float)
    ROOT/pairs/000000/disparity.png    16-bit, larger = nearer
    ROOT/pairs/000000/alpha_00.png ... per-layer mattes (not read into items)
    ROOT/pairs/000000/target.png       ground truth (target16.png, target.pfm)
    ROOT/pairs/000000/params.json      blur, focus_disparity, aperture {blades, rotation}, layers, lights, ...

A pair folder is complete when its name has no leading dot and ``params.json`` is present; anything else
(a pair still being written) is ignored. ``encoding`` picks which files are read for ``image`` and
``target``: ``"png16"`` (default, 16-bit sRGB of the clipped composite), ``"png8"`` or ``"pfm"`` (linear
float, unclipped, HDR lights kept).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .._convert import decode_gamma, encode_srgb
from ..errors import InputError
from ..io import read_disparity, read_image
from ._common import check_root, layout_error, make_item

__all__ = ["ENCODINGS", "SynthDataset"]

ENCODINGS = {"png16": ("image16.png", "target16.png"), "png8": ("image.png", "target.png"),
             "pfm": ("image.pfm", "target.pfm")}

LAYOUT = """  ROOT/manifest.json
  ROOT/pairs/000000/{image.png,image16.png,image.pfm,disparity.png,target.png,target16.png,target.pfm,params.json}
  ...   (written by lensblur.synth.synthesize(ROOT, count), the command line's `lensblur synth`)"""


class SynthDataset(Dataset):
    """Pairs written by ``lensblur synth`` (see the module doc), with their lens in ``meta["lens"]``.

    Args:
        root: the folder :func:`lensblur.synth.synthesize` wrote.
        encoding: which files to read: ``png16`` (16-bit sRGB), ``png8`` or ``pfm`` (linear float).

    Raises:
        InputError: an unknown encoding, a root without a manifest, or a pair folder missing a file.
    """

    name = "synth"

    def __init__(self, root, *, encoding: str = "png16"):
        if encoding not in ENCODINGS:
            raise InputError("encoding", expected=f"one of {', '.join(ENCODINGS)}", got=encoding,
                             fix="e.g. encoding=png16 (the default), encoding=png8, or encoding=pfm for linear float")
        self.root = check_root(root, "lensblur synth", LAYOUT)
        self.encoding = encoding
        manifest = self.root / "manifest.json"
        if not manifest.is_file():
            raise layout_error("lensblur synth", self.root, LAYOUT, "manifest.json is missing")
        try:
            self.manifest = json.loads(manifest.read_text())
        except ValueError as exc:
            raise layout_error("lensblur synth", self.root, LAYOUT, f"manifest.json is not JSON ({exc})") from exc
        pairs = self.root / "pairs"
        if not pairs.is_dir():
            raise layout_error("lensblur synth", self.root, LAYOUT, "pairs/ is missing")
        self.pairs = sorted(p for p in pairs.iterdir()
                            if p.is_dir() and not p.name.startswith(".") and (p / "params.json").is_file())
        if not self.pairs:
            raise layout_error("lensblur synth", self.root, LAYOUT, "no complete pair in pairs/ yet")

    def __len__(self) -> int:
        return len(self.pairs)

    def item_id(self, index: int) -> str:
        return self.pairs[index].name

    def __getitem__(self, index: int) -> dict[str, Any]:
        folder = self.pairs[index]
        image_name, target_name = ENCODINGS[self.encoding]
        for name in (image_name, target_name, "disparity.png"):
            if not (folder / name).is_file():
                raise InputError("root", expected=f"{name} in every complete pair folder", got=f"none in {folder}",
                                 fix="regenerate the pair with lensblur synth (delete the folder, rerun to resume)")
        params = json.loads((folder / "params.json").read_text())
        image = read_image(folder / image_name)
        target = read_image(folder / target_name)
        if params.get("transfer") == "gamma2.2" and self.encoding != "pfm":   # files hold linear ** (1 / 2.2)
            image, target = (decode_gamma(encode_srgb(x)).astype(np.float32) for x in (image, target))
        disparity = read_disparity(folder / "disparity.png", shape=image.shape[:2])
        aperture = params.get("aperture") or {}
        lens = {"blur": float(params["blur"]), "focus_disparity": float(params["focus_disparity"]),
                "aperture": {"blades": int(aperture.get("blades", 0)),
                             "rotation": float(aperture.get("rotation", 0.0))}}
        meta = {"id": folder.name, "dataset": self.name, "lens": lens, "params": params, "pair_dir": str(folder),
                "encoding": self.encoding}
        return make_item(image, target=target, disparity=disparity, meta=meta)
