"""Layered scenes and the aperture-sampling ray tracer that makes ground-truth lens blur."""

from .aperture import ApertureSamples, aperture_samples
from .tracer import Layer, TraceResult, auto_samples, trace

__all__ = ["ApertureSamples", "Layer", "TraceResult", "aperture_samples", "auto_samples", "trace"]
