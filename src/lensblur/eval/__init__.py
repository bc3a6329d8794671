"""Evaluation: run a method over a dataset and score it like the papers (``lensblur eval``).

The methods it runs are :mod:`lensblur.methods`' (the registry ``lensblur render --method`` uses too;
re-exported here); :mod:`lensblur.eval.runner` holds the resumable runner and the depth-edge band, :mod:`lensblur.eval.report` the Markdown tables.
"""

from ..methods import (
           METHODS,
           ClassicalRenderer,
           EvalMethod,
           Identity,
           available_methods,
           get_method,
           register_method,
)
from .report import collect_summaries, markdown_table
from .runner import EDGE_BAND_PX, EDGE_JUMP, EvalOptions, depth_edge_band, evaluate, load_perceptual

__all__ = ["EDGE_BAND_PX", "EDGE_JUMP", "METHODS", "ClassicalRenderer", "EvalMethod", "EvalOptions", "Identity",
           "available_methods", "collect_summaries", "depth_edge_band", "evaluate", "get_method", "load_perceptual",
           "markdown_table", "register_method"]
