"""File input and output at the public boundary (numpy arrays, linear RGB, disparity in [0, 1])."""

from .disparity import (
    DISPARITY_SUFFIXES,
    DepthRange,
    check_disparity_output,
    check_map,
    depth_to_disparity,
    preview_image,
    read_depth,
    read_depth_as_disparity,
    read_disparity,
    resize_map,
    write_disparity,
)
from .files import atomic_path, check_output_path, list_images, make_folder, natural_key, write_text
from .image import (
    IMAGE_SUFFIXES,
    ImageInfo,
    check_write_options,
    read_display,
    read_image,
    read_image_info,
    read_raw,
    write_image,
)
from .mask import read_mask
from .metadata import Metadata
from .sheet import contact_sheet

__all__ = [
    "DISPARITY_SUFFIXES",
    "IMAGE_SUFFIXES",
    "DepthRange",
    "ImageInfo",
    "Metadata",
    "atomic_path",
    "check_disparity_output",
    "check_map",
    "check_output_path",
    "check_write_options",
    "contact_sheet",
    "depth_to_disparity",
    "list_images",
    "make_folder",
    "natural_key",
    "preview_image",
    "read_depth",
    "read_depth_as_disparity",
    "read_disparity",
    "read_display",
    "read_image",
    "read_image_info",
    "read_mask",
    "read_raw",
    "resize_map",
    "write_disparity",
    "write_image",
    "write_text",
]
