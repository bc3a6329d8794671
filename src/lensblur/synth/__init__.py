"""Layered scenes and the aperture-sampling ray tracer that makes ground-truth lens blur.

::

    from lensblur.synth import make_scene, trace
    scene = make_scene(index=0, seed=7, size=(512, 384))
    image, disparity, target = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                                     aperture=scene.aperture, margin=scene.margin)

``lensblur synth`` writes whole datasets of such pairs (:func:`lensblur.synth.dataset.synthesize`).
"""

from .aperture import ApertureSamples, aperture_samples
from .layers import load_scene, rerender
from .scene import GENERATOR_VERSION, Scene, make_scene
from .tracer import Layer, TraceResult, auto_samples, trace

__all__ = ["GENERATOR_VERSION", "ApertureSamples", "Layer", "Scene", "TraceResult", "aperture_samples",
           "auto_samples", "load_scene", "make_scene", "rerender", "trace"]
