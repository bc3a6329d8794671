"""Lazy imports of heavy optional packages.

``import lensblur`` must stay light: diffusers, transformers, OpenCV and friends are imported only by the
function that needs them, through :func:`require`, which turns a missing package into an error that names
the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["available", "cv2", "hf_cache_dir", "require"]


def require(module: str, *, extra: str, feature: str, package: str | None = None) -> ModuleType:
    """Import an optional module.

    Args:
        module: the dotted module name.
        extra: the ``lensblur[extra]`` that installs it.
        feature: what needs it, for the error message.
        package: the distribution to name when it differs from the top-level module.

    Returns:
        The module.

    Raises:
        MissingDependencyError: it cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package or module.split(".")[0], extra=extra, feature=feature) from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported (imports it if so).

    Args:
        module: the dotted module name.

    Returns:
        True when the import succeeds.
    """
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def cv2(feature: str, *, extra: str) -> ModuleType:
    """OpenCV (with its contrib modules, ``opencv-contrib-python-headless``), imported on first use.

    Args:
        feature: what needs it, for the error message.
        extra: the ``lensblur[extra]`` that installs it.

    Returns:
        The ``cv2`` module.

    Raises:
        MissingDependencyError: OpenCV is not installed.
    """
    return require("cv2", extra=extra, feature=feature, package="opencv-contrib-python-headless")


def hf_cache_dir(*, extra: str, feature: str) -> str:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it (``HF_HUB_CACHE``, ``HF_HOME/hub``,
    ``XDG_CACHE_HOME``, ``~/.cache/huggingface/hub``): where diffusers and transformers look for a model id.

    Args:
        extra, feature: as :func:`require`, for the message when huggingface_hub is missing.
    """
    constants = require("huggingface_hub.constants", extra=extra, feature=feature, package="huggingface_hub")
    return str(constants.HF_HUB_CACHE)
