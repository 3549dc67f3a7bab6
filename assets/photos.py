"""Real photographs that ship inside scikit-image (no downloads): the natural-image test set for 2D methods.

Images come back as float32 HxWx3 in [0, 1] (grey images are repeated to 3 channels) so every 2D method sees
the same layout. Downsampling is area-correct (box filter for integer factors, Gaussian-prefiltered otherwise),
because an aliased "ground truth" would defeat the purpose of a multiscale studio.
"""
from __future__ import annotations

import functools

import numpy as np

# name -> skimage.data loader; only files bundled in the scikit-image wheel (no pooch download).
_PHOTOS: dict[str, str] = {
    "astronaut": "astronaut",
    "brick": "brick",
    "camera": "camera",
    "chelsea": "chelsea",
    "coffee": "coffee",
    "coins": "coins",
    "grass": "grass",
    "gravel": "gravel",
    "hubble": "hubble_deep_field",
    "ihc": "immunohistochemistry",
    "moon": "moon",
    "retina": "retina",
    "rocket": "rocket",
    "text": "text",
}


def list_photos() -> list[str]:
    """Names accepted by :func:`load_photo`."""
    return sorted(_PHOTOS)


@functools.lru_cache(maxsize=8)
def _load_native(name: str) -> np.ndarray:
    import skimage.data

    raw = np.asarray(getattr(skimage.data, _PHOTOS[name])())
    img = raw.astype(np.float32) / float(np.iinfo(raw.dtype).max if raw.dtype.kind in "ui" else 1.0)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3])
    img.setflags(write=False)  # shared through the cache: callers get copies
    return img


def center_crop_square(img: np.ndarray) -> np.ndarray:
    """The largest centred square of ``img``."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return img[y0:y0 + s, x0:x0 + s]


def centre_crop(img: np.ndarray, max_side: int) -> np.ndarray:
    """The centred window of at most ``max_side`` x ``max_side`` pixels (``img`` itself when it fits or 0)."""
    if not max_side or max(img.shape[:2]) <= max_side:
        return img
    h, w = img.shape[:2]
    y0, x0 = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return img[y0:y0 + max_side, x0:x0 + max_side]


def resize_image(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased resize of an HxWxC float image: exact box average for integer shrink factors, else
    Gaussian-prefiltered linear (shrinking) or cubic (enlarging) interpolation, clipped to [0, 1]."""
    if height < 1 or width < 1:
        raise ValueError(f"resize target must be positive, got {height}x{width}")
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return np.array(img, dtype=np.float32)
    if h % height == 0 and w % width == 0:
        fy, fx = h // height, w // width
        out = img.reshape(height, fy, width, fx, -1).mean(axis=(1, 3))
        return out.astype(np.float32).reshape((height, width) + img.shape[2:])
    from skimage.transform import resize

    shrinking = height < h or width < w
    out = resize(img, (height, width) + img.shape[2:], order=1 if shrinking else 3, mode="reflect",
                 anti_aliasing=shrinking, preserve_range=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_photo(name: str, size: int | None = None) -> np.ndarray:
    """Photo ``name`` as float32 HxWx3 in [0, 1]; with ``size``, centre-cropped to a square and resized to it."""
    if name not in _PHOTOS:
        raise ValueError(f"unknown photo {name!r}; valid names: {', '.join(list_photos())}")
    img = _load_native(name)
    if size is None:
        return img.copy()
    if int(size) != size or size < 1:
        raise ValueError(f"photo size must be a positive integer, got {size!r}")
    return resize_image(center_crop_square(img), int(size), int(size))


MOSAIC_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble", "ihc", "retina", "camera", "brick", "gravel")


def photo_mosaic(size: int = 4096, tile: int = 256, seed: int = 0) -> np.ndarray:
    """A size x size mosaic of tile² crops of the bundled photos at their *native* resolution (each crop randomly
    placed, flipped and rotated by a seeded generator): real photographic detail at every pixel, for training and
    benchmarking large-image representations (MINER) where no photo that large ships. Nothing is upscaled."""
    if size < tile or size % tile:
        raise ValueError(f"mosaic size must be a positive multiple of {tile}, got {size}")
    rng = np.random.default_rng(seed)
    names = [n for n in MOSAIC_PHOTOS if n in _PHOTOS]
    out = np.empty((size, size, 3), dtype=np.float32)
    for ty in range(0, size, tile):
        for tx in range(0, size, tile):
            img = _load_native(names[int(rng.integers(len(names)))])
            y0, x0 = int(rng.integers(img.shape[0] - tile + 1)), int(rng.integers(img.shape[1] - tile + 1))
            crop = np.rot90(img[y0:y0 + tile, x0:x0 + tile], int(rng.integers(4)))
            out[ty:ty + tile, tx:tx + tile] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out
