"""Decoding image files into uint8 arrays at the training size, in parallel.

Two passes over the files: the first reads only each image's header (size and mode), which
settles the training size and the channels; the second decodes each image, converts it
(grayscale: luminance; RGB: RGBA and palette images composited onto white) and resizes it
(area-averaging down, bilinear up) straight into the output array, which may be a
memory-mapped file: the whole pixel set need not fit in memory.
"""

import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fer_kaggle.errors import DataError

GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
MAX_SIDE = 128  # the longest side an inferred training size may have (larger images are scaled down to it)
THREADS = max(1, min(8, os.cpu_count() or 1))


def _pil():
    from PIL import Image, UnidentifiedImageError

    return Image, UnidentifiedImageError


def probe(files, names, threads=THREADS):
    """[(width, height, mode)] of each image, from its header; a DataError names the first bad file."""
    Image, Unidentified = _pil()

    def one(name):
        if files.size(name) == 0:
            raise DataError(files.label(name), "is an empty (zero-byte) file, not an image")
        try:
            with files.open(name) as stream, Image.open(stream) as image:
                return image.size[0], image.size[1], image.mode
        except (Unidentified, OSError, ValueError, SyntaxError) as e:
            raise DataError(files.label(name), f"is not a readable image ({type(e).__name__}: {e})") from None

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, names))


def training_size(sizes, image_size=None):
    """(height, width, policy) from the images' (width, height) sizes: the one size they share,
    else the most common one (policy 'resize'), scaled down so the longer side is at most
    MAX_SIDE; `image_size` (h, w) given by the user wins."""
    counts = Counter((h, w) for w, h in sizes)
    (h, w), _ = counts.most_common(1)[0]
    policy = "fixed" if len(counts) == 1 else "resize"
    if image_size is not None:
        h2, w2 = image_size
        return int(h2), int(w2), "fixed" if (policy == "fixed" and (h2, w2) == (h, w)) else "resize"
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        h, w, policy = max(8, round(h * scale)), max(8, round(w * scale)), "resize"
    return int(h), int(w), policy


def channels_of(modes):
    return 1 if all(m in GRAY_MODES for m in modes) else 3


def convert(image, channels, height, width):
    """One PIL image as uint8 (height, width, channels)."""
    Image, _ = _pil()
    if channels == 1:
        image = image.convert("L") if image.mode not in ("I", "I;16", "F") else _scaled_gray(image)
    else:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert("RGB")
    if image.size != (width, height):
        down = image.size[0] >= width and image.size[1] >= height
        image = image.resize((width, height), Image.Resampling.BOX if down else Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def _scaled_gray(image):
    """16-bit and float grayscale scaled to 0-255 by its own range."""
    Image, _ = _pil()
    a = np.asarray(image, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    return Image.fromarray(np.uint8(np.clip((a - lo) / max(hi - lo, 1e-9) * 255, 0, 255).round()))


def decode_into(out, files, names, spec_size, channels, fixed, threads=THREADS):
    """Decode `names` into `out` (uint8 (n, h, w, channels), a memmap or an array)."""
    Image, Unidentified = _pil()
    height, width = spec_size

    def one(i):
        name = names[i]
        try:
            with Image.open(io.BytesIO(files.read(name))) as image:
                if fixed and image.size != (width, height):
                    raise DataError(files.label(name), f"is {image.size[0]}x{image.size[1]}, but the spec says every "
                                                       f"image is {width}x{height} (resize 'fixed'; pass --image-size "
                                                       f"to resize them all)")
                image.load()
                out[i] = convert(image, channels, height, width)
        except DataError:
            raise
        except (Unidentified, OSError, ValueError, SyntaxError) as e:
            raise DataError(files.label(name), f"does not decode ({type(e).__name__}: {e}): a truncated or corrupt "
                                               f"image") from None

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(len(names))):
            pass
    return out


def decode_bytes(blobs, where, channels, height, width):
    """Images given as bytes (the device pack): uint8 (n, height, width, channels)."""
    Image, Unidentified = _pil()
    out = np.empty((len(blobs), height, width, channels), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                out[i] = convert(image, channels, height, width)
        except (Unidentified, OSError, ValueError, SyntaxError) as e:
            raise DataError(where, f"image {i} is not a readable image ({e})") from None
    return out
