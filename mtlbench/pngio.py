"""Reading and writing images with fixed, reproducible settings.

Every PNG that mtlbench writes goes through `encode_png`: Pillow writes no time or text chunks
by default, so the same array always gives the same bytes (for a given zlib). Compression level 1
is chosen on purpose: on 1280x1024 frames it is several times faster than the default level 6
and costs about 10-15% in file size (see benchmarks/build_rate.py).

Images are read from a path or from bytes already in memory (a dataset file whose sha256 was
just checked); `where` names the file in errors either way.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mtlbench.errors import InputError
from mtlbench.outputs import write_bytes

PNG_COMPRESS_LEVEL = 1
# Far above any endoscopy frame (8K is 33 Mpx); refuses decompression bombs before decoding.
MAX_IMAGE_PIXELS = 64_000_000

ImageInput = Path | bytes


def open_image(source: ImageInput, where: str | Path | None = None) -> Image.Image:
    """Open and fully decode an image file (a path, or its bytes), with a one-line error for anything unreadable."""
    where = where if where is not None else source
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(where, f"image of {width}x{height} pixels exceeds the limit of {MAX_IMAGE_PIXELS}")
            img.load()
            return img
    except FileNotFoundError:
        raise InputError(where, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(where, f"corrupt or unreadable image ({exc.__class__.__name__}: {exc})") from None


def read_rgb(source: ImageInput, where: str | Path | None = None) -> np.ndarray:
    """An image as an (H, W, 3) uint8 array; grey, palette and alpha images are converted."""
    img = open_image(source, where)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def read_class_mask(source: ImageInput, where: str | Path | None = None) -> np.ndarray:
    """A single-channel 8-bit PNG of class ids as an (H, W) uint8 array."""
    img = open_image(source, where)
    if img.mode != "L":
        raise InputError(where if where is not None else source, f"mask must be a single-channel 8-bit PNG, found mode {img.mode}")
    return np.asarray(img)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) uint8 mask or an (H, W, 3) uint8 RGB image."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected (H, W) or (H, W, 3) uint8, got {array.shape} {array.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def write_png(path: Path, array: np.ndarray) -> str:
    """Encode `array` as PNG at `path`; returns the file's sha256."""
    return write_bytes(path, encode_png(array))
