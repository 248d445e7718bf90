"""Decoding image files into uint8 arrays at the training size, in parallel.

Two passes over the files: the first reads only each image's header (size and mode), which
settles the training size and the channels; the second decodes each image, converts it
(grayscale: luminance; RGB: RGBA and palette images composited onto white) and resizes it
(area-averaging down, bilinear up) straight into the output array, which may be a
memory-mapped file: the whole pixel set need not fit in memory.

Images are read as a viewer shows them: turned by their EXIF orientation, CMYK converted to
RGB, 16-bit samples brought to 8 bits (/257), an animation's first frame. An image of more
than MAX_PIXELS is refused from its header, before anything is decoded (a decompression bomb
declares billions); a large JPEG is decoded at a reduced scale that still covers the
training size.
"""

import io
import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fer_kaggle.errors import DataError

GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")
MAX_PIXELS = 64_000_000  # an image of more pixels than this is refused (8000x8000; a phone's photo has 12-50M)
MAX_SIDE = 128  # the longest side an inferred training size may have (larger images are scaled down to it)
THREADS = max(1, min(8, os.cpu_count() or 1))


def _pil():
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own check: an error from twice the limit, where headers lie
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # below that, check_pixels refuses in one line
    return Image, UnidentifiedImageError


def unreadable():
    """The exceptions a hostile or broken file raises in Pillow."""
    Image, Unidentified = _pil()
    return (Unidentified, OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError)


def _oriented_size(image):
    """(width, height) as a viewer shows the image (EXIF orientations 5-8 turn it a quarter)."""
    orientation = image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    return image.size[::-1] if orientation in (5, 6, 7, 8) else image.size


def check_pixels(image, label):
    if image.size[0] * image.size[1] > MAX_PIXELS:
        raise DataError(label, f"is {image.size[0]}x{image.size[1]} pixels, {OVER_LIMIT}")


OVER_LIMIT = (f"over the {MAX_PIXELS / 1e6:.0f}-megapixel limit of one image (a decompression bomb, or a scan to "
              f"bring down first)")


def refusal(error):
    """What a Pillow error says in one line."""
    Image, _ = _pil()
    if isinstance(error, Image.DecompressionBombError):
        return f"declares more than {2 * MAX_PIXELS / 1e6:.0f} megapixels, {OVER_LIMIT}"
    return f"{type(error).__name__}: {error}"


def probe(files, names, threads=THREADS):
    """[(width, height, mode)] of each image, from its header; a DataError names the first bad file."""
    Image, Unidentified = _pil()

    errors = unreadable()

    def one(name):
        if files.size(name) == 0:
            raise DataError(files.label(name), "is an empty (zero-byte) file, not an image")
        try:
            with files.open(name) as stream, Image.open(stream) as image:
                check_pixels(image, files.label(name))
                width, height = _oriented_size(image)
                return width, height, image.mode
        except DataError:
            raise
        except errors as e:
            raise DataError(files.label(name), f"is not a readable image ({refusal(e)})") from None

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
    """One PIL image as uint8 (height, width, channels), as a viewer shows it."""
    from PIL import ImageOps

    Image, _ = _pil()
    if image.format == "JPEG" and image.mode in ("L", "RGB", "CMYK", "YCbCr"):
        turned = _oriented_size(image) != image.size
        image.draft(image.mode, (height, width) if turned else (width, height))  # decode at a scale >= the target
    image = ImageOps.exif_transpose(image)  # the orientation a camera recorded (a copy: also the first frame only)
    if image.mode in SIXTEEN_BIT or image.mode == "F":
        image = _eight_bit(image)
    if channels == 1:
        image = image.convert("L")
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


def _eight_bit(image):
    """A 16-bit grayscale image as a viewer shows it (65535 is white: /257); a 32-bit integer one
    the same where its values pass 255; a float one scaled by its own range (it has none of its own)."""
    Image, _ = _pil()
    a = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / max(hi - lo, 1e-9) * 255
    elif image.mode != "I" or a.max() > 255:
        a = a / 257
    return Image.fromarray(np.uint8(np.clip(a, 0, 255).round()))


def decode_into(out, files, names, spec_size, channels, fixed, threads=THREADS):
    """Decode `names` into `out` (uint8 (n, h, w, channels), a memmap or an array)."""
    Image, _ = _pil()
    errors = unreadable()
    height, width = spec_size

    def one(i):
        name = names[i]
        try:
            with Image.open(io.BytesIO(files.read(name))) as image:
                check_pixels(image, files.label(name))
                shown = _oriented_size(image)
                if fixed and shown != (width, height):
                    raise DataError(files.label(name), f"is {shown[0]}x{shown[1]}, but the spec says every "
                                                       f"image is {width}x{height} (resize 'fixed'; pass --image-size "
                                                       f"to resize them all)")
                out[i] = convert(image, channels, height, width)
        except DataError:
            raise
        except errors as e:
            raise DataError(files.label(name), f"does not decode ({refusal(e)}): a truncated or corrupt "
                                               f"image") from None

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(len(names))):
            pass
    return out


def decode_bytes(blobs, where, channels, height, width):
    """Images given as bytes (the device pack): uint8 (n, height, width, channels)."""
    Image, _ = _pil()
    errors = unreadable()
    out = np.empty((len(blobs), height, width, channels), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                check_pixels(image, f"{where}, image {i}")
                out[i] = convert(image, channels, height, width)
        except DataError:
            raise
        except errors as e:
            raise DataError(where, f"image {i} is not a readable image ({refusal(e)})") from None
    return out
