"""Reading image files the user (or a dataset) names, with one clear line when a file is not an image.

imageio reports an undecodable file as "Could not find a backend to open `x.png`` …" followed by advice to pip
install video plugins, which sends users the wrong way; every loader goes through :func:`read_image` instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_FORMATS", "read_image", "unreadable_image_message"]

IMAGE_FORMATS = "PNG/JPEG/BMP/TIFF/GIF/WebP"


def unreadable_image_message(path: str | os.PathLike) -> str:
    """The one-line message for a file that exists but does not decode as an image."""
    return (f"cannot read image {path}: not a {IMAGE_FORMATS} image imageio can decode; "
            f"check the file or pass another image")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The pixels of an image file as imageio decodes them (dtype and channels as stored).

    Raises FileNotFoundError for a missing file and ValueError (one line naming the file) for anything that is
    not a decodable image: random bytes, text, an empty or truncated file, a folder."""
    import imageio.v3 as iio

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"image not found: {p}")
    if not p.is_file():
        raise ValueError(f"cannot read image {p}: it is a folder, not a file; pass an image file")
    try:
        return np.asarray(iio.imread(p))
    except Exception:  # noqa: BLE001 - imageio raises many types (OSError, ValueError, SyntaxError, …)
        raise ValueError(unreadable_image_message(p)) from None
