"""Image reading that copes with what users actually have on disk.

Every image comes back as an RGB uint8 array in the orientation a viewer shows (EXIF applied),
whatever its mode: gray, palette, RGBA/LA (composited on white), CMYK, 16-bit or float.
Anything unreadable raises a one-line :class:`InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
PIL_FORMATS = {"JPEG", "PNG", "TIFF", "BMP", "WEBP", "MPO"}  # what those suffixes hold (MPO: multi-picture JPEG)

# Orientations 5-8 swap width and height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise InputError(path, "image file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, expected an image file")
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise InputError(path, "not a readable image (unknown or corrupt format)") from None
    except OSError as exc:
        raise InputError(path, f"cannot open image ({exc})") from None


def _to_rgb8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # High bit depth: scale by the image's own maximum so 12-bit and 16-bit data both fill 0-255.
        data = np.asarray(image, dtype=np.float64)
        top = float(np.nanmax(data)) if data.size else 0.0
        if top > 255:
            data = data * (255.0 / top)
        gray = np.clip(np.nan_to_num(data), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode == "RGB" and image.getbands() == ("R", "G", "B"):
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))


def read_image(path: str | Path, exif: bool = True) -> np.ndarray:
    """Read an image file as an HxWx3 RGB uint8 array."""
    path = Path(path)
    return _decode(_open(path), path, exif)


def decode_image(data: bytes, name: str, exif: bool = True, max_pixels: int | None = None) -> np.ndarray:
    """An image held in memory (e.g. an upload) as an HxWx3 RGB uint8 array; the format is recognised from the
    content, never from ``name`` (used in error messages only). ``max_pixels`` refuses larger images before
    decoding them."""
    import io

    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(name, "not an image (its content is no known image format)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(name, f"cannot open image ({exc})") from None
    if image.format not in PIL_FORMATS:
        raise InputError(name, f"{image.format} images are not accepted (use {', '.join(sorted(PIL_FORMATS))})")
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(name, f"image is {width}x{height}, larger than the limit of {max_pixels / 1e6:g} megapixels")
    return _decode(image, name, exif)


def _decode(image: Image.Image, path, exif: bool) -> np.ndarray:
    try:
        with image:
            image.load()
            if exif:
                image = ImageOps.exif_transpose(image)
            array = _to_rgb8(image)
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "image file is truncated (incomplete download or copy?)"
        raise InputError(path, f"corrupt image: {reason}") from None
    return np.ascontiguousarray(array)


def image_size(path: str | Path, exif: bool = True) -> tuple[int, int]:
    """(width, height) from the file header, as :func:`read_image` would return it."""
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
        if exif:
            try:
                orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            except Exception:  # malformed EXIF block: fall back to the raw grid
                orientation = 1
            if orientation in _TRANSPOSING_ORIENTATIONS:
                width, height = height, width
    return width, height


def list_images(paths) -> list[Path]:
    """Expand files and folders (non-recursive) into a sorted list of image files."""
    found: list[Path] = []
    for item in paths:
        item = Path(item)
        if item.is_dir():
            found.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif item.exists():
            found.append(item)
        else:
            raise InputError(item, "no such file or folder")
    return found
