"""Reading image files the user (or a dataset) names, with one clear line when a file is not an image.

imageio reports an undecodable file as "Could not find a backend to open `x.png`` …" followed by advice to pip
install video plugins, which sends users the wrong way; every loader goes through :func:`read_image` instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_FORMATS", "read_image", "unreadable_image_message", "load_rgb"]

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


def load_rgb(spec: str, size: int | None = None) -> tuple[np.ndarray, str, list[str]]:
    """A bundled photo name (see assets.photos) or an image file -> (HxWx3 float32 in [0, 1], label, notes).

    Grey images are repeated to RGB and an alpha channel is dropped; ``notes`` says so, for the caller to show.
    ``size`` centre-crops to a square and resizes to size x size. Bad input raises one-line ValueErrors."""
    from assets import photos

    if spec in photos.list_photos():
        return photos.load_photo(spec, size=size), spec, []
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"image '{spec}' is neither a file nor a bundled photo "
                         f"({', '.join(photos.list_photos())})")
    raw = read_image(path)  # one-line ValueError for anything that is not an image
    if raw.ndim not in (2, 3) or raw.size == 0 or (raw.ndim == 3 and raw.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"{path}: expected a grey, RGB or RGBA image, got array of shape {raw.shape}")
    if raw.dtype.kind not in "uif":
        raise ValueError(f"{path}: unsupported pixel type {raw.dtype}")
    scale = float(np.iinfo(raw.dtype).max) if raw.dtype.kind in "ui" else 1.0
    img = raw.astype(np.float32) / scale
    if img.ndim == 2:
        img = img[:, :, None]
    notes = []
    if img.shape[2] in (1, 2):
        notes.append("grey image: repeated to RGB")
    if img.shape[2] in (2, 4):
        notes.append("alpha channel dropped")
    img = np.repeat(img[:, :, :1], 3, axis=2) if img.shape[2] in (1, 2) else img[:, :, :3]
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{path}: image contains NaN or inf")
    img = np.clip(img, 0.0, 1.0)
    if size is not None:
        img = photos.resize_image(photos.center_crop_square(img), size, size)
    return np.ascontiguousarray(img, dtype=np.float32), path.stem, notes


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG16_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA) of an HxW[xC] uint16 array — Pillow cannot write 16-bit RGB(A), and UV
    frames need the precision (1/65535 of the texture per step, as the NGSSF reference's UV sequences)."""
    import struct
    import zlib

    a = np.asarray(array)
    if a.dtype != np.uint16:
        raise ValueError(f"encode_png16 needs uint16 data, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in _PNG16_COLOR_TYPES:
        raise ValueError(f"encode_png16 needs HxW, HxWx3 or HxWx4, got shape {a.shape}")
    h, w, c = a.shape
    rows = np.ascontiguousarray(a.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", w, h, 16, _PNG16_COLOR_TYPES[c], 0, 0, 0)
    return (_PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw, 6))
            + _png_chunk(b"IEND", b""))


def decode_png16(data: bytes) -> np.ndarray:
    """The inverse of :func:`encode_png16` (16-bit, non-interlaced PNGs with unfiltered rows, as it writes)."""
    import struct
    import zlib

    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos, idat, header = len(_PNG_SIGNATURE), b"", None
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    if header is None:
        raise ValueError("PNG without a header")
    w, h, depth, ctype, _, _, interlace = header
    channels = {v: k for k, v in _PNG16_COLOR_TYPES.items()}.get(ctype)
    if depth != 16 or channels is None or interlace:
        raise ValueError(f"decode_png16 reads 16-bit non-interlaced grey/RGB/RGBA PNGs, got depth {depth}, "
                         f"colour type {ctype}")
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * channels * 2)
    if raw[:, 0].any():
        raise ValueError("decode_png16 reads unfiltered rows only (files written by encode_png16)")
    return raw[:, 1:].copy().view(">u2").astype(np.uint16).reshape(h, w, channels)
