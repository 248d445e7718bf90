"""New images to predict, in any of the forms a user has: a pixel CSV (FER's layouts, or one
column per pixel), a folder of image files, or one image file of any size or mode, brought
to the model's size and channels as the training images were (`fer_kaggle.data.decode`)."""

from pathlib import Path

import numpy as np

from fer_kaggle.data.decode import check_pixels, convert, refusal, unreadable
from fer_kaggle.data.files import IMAGE_SUFFIXES
from fer_kaggle.data.parse import parse_header, read_pixel_csv
from fer_kaggle.errors import DataError

CSV_LAYOUTS = {  # header -> (columns, whose first column names the rows)
    ("id", "feature"): ("id", "feature"),
    ("label", "feature"): ("label", "feature"),
    ("emotion", "pixels", "usage"): ("emotion", "pixels", "usage"),
}


def read_images(path, height, width, channels):
    """(names, uint8 (n, height, width, channels) images, kind): kind is 'csv' (names are the
    ids, or row numbers where the layout has none) or 'images' (names are the file names)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(path, f"holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return [p.name for p in files], np.stack([load_image(p, height, width, channels) for p in files]), "images"
    if path.suffix.lower() == ".csv":
        names, pixels = _read_csv(path)
        return names, _bring(pixels, height, width, channels), "csv"
    return [path.name], load_image(path, height, width, channels)[None], "images"


def _read_csv(path):
    data = path.read_bytes()
    fields, _ = parse_header(data, path)
    columns = CSV_LAYOUTS.get(tuple(fields))
    if columns is not None:
        table = read_pixel_csv(data, path, columns)
        names = table.keys.tolist() if columns[0] == "id" else list(range(len(table.keys)))
        return names, table.pixels
    from fer_kaggle.data.readers.pixel_columns import PIXEL, _numbers, _pixels

    fields, table, lines = _numbers(data, str(path))
    pixels = [i for i, f in enumerate(fields) if PIXEL.match(f)]
    others = [i for i, f in enumerate(fields) if not PIXEL.match(f)]
    side = int(round(len(pixels) ** 0.5))
    if len(pixels) < 64 or side * side != len(pixels):
        raise DataError(path, f"header is {','.join(fields)[:60]!r}, expected one of "
                              f"{', '.join(repr(','.join(c)) for c in CSV_LAYOUTS)} or square pixel columns", line=1)
    images = _pixels(table[:, pixels], lines, fields, pixels, str(path)).reshape(-1, side, side, 1)
    names = [str(int(v)) for v in table[:, others[0]]] if others and fields[others[0]] != "label" else \
        list(range(1, len(images) + 1))
    return names, images


def _bring(pixels, height, width, channels):
    """Pixel-CSV images (n, s, s, 1) at the model's size and channels."""
    from PIL import Image

    if pixels.shape[1:] == (height, width, channels):
        return pixels
    return np.stack([convert(Image.fromarray(p[..., 0]), channels, height, width) for p in pixels])


def load_image(path, height, width, channels):
    """One image file as uint8 (height, width, channels), as a viewer shows it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            check_pixels(image, path)
            return convert(image, channels, height, width)
    except UnidentifiedImageError:
        raise DataError(path, "not a readable image (not a PNG, JPEG, BMP, WebP, GIF or TIFF file)") from None
    except DataError:
        raise
    except unreadable() as e:
        raise DataError(path, f"not a readable image ({refusal(e)})") from None
