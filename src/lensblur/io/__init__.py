"""File input and output at the public boundary (numpy arrays, linear RGB, disparity in [0, 1])."""

from .disparity import (
    DepthRange,
    check_map,
    depth_to_disparity,
    read_depth,
    read_depth_as_disparity,
    read_disparity,
    resize_map,
)
from .files import atomic_path, atomic_write, check_output_path
from .image import IMAGE_SUFFIXES, read_display, read_image, read_raw, write_image

__all__ = [
    "IMAGE_SUFFIXES",
    "DepthRange",
    "atomic_path",
    "atomic_write",
    "check_map",
    "check_output_path",
    "depth_to_disparity",
    "read_depth",
    "read_depth_as_disparity",
    "read_disparity",
    "read_display",
    "read_image",
    "read_raw",
    "resize_map",
    "write_image",
]
