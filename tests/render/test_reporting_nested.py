"""``lensblur.render.reporting`` blocks nest: the inner and the outer callback both see a render's progress."""

from __future__ import annotations

import numpy as np

from lensblur import Lens
from lensblur.render import render, reporting


def test_nested_reporting_reaches_both_callbacks(textured):
    disparity = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (48, 1))
    inner, outer, alone = [], [], []
    with reporting(lambda done, total: outer.append((done, total))):
        with reporting(lambda done, total: inner.append((done, total))):
            render(textured.astype(np.float32), disparity, Lens(focus_disparity=0.5, blur=6))
        assert inner and inner == outer and inner[-1][0] == inner[-1][1]
    with reporting(lambda done, total: alone.append((done, total))):
        render(textured.astype(np.float32), disparity, Lens(focus_disparity=0.5, blur=6))
    assert alone == inner                                 # the outer block ended: one callback again
    assert len(outer) == len(inner)
