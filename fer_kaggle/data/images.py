"""New images to predict, in any of the forms a user has: a CSV in either competition layout,
a folder of PNG/JPEG files, or one image file of any size or mode, converted to 48x48
grayscale as the training images were (luminance, then an area-averaging resize)."""

from pathlib import Path

import numpy as np

from fer_kaggle import IMAGE_SIZE
from fer_kaggle.data.parse import parse_header, read_pixel_csv
from fer_kaggle.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CSV_LAYOUTS = {  # header -> (columns, whose first column names the rows)
    ("id", "feature"): ("id", "feature"),
    ("label", "feature"): ("label", "feature"),
    ("emotion", "pixels", "usage"): ("emotion", "pixels", "usage"),
}


def read_images(path):
    """(names, uint8 (n, 48, 48) images, kind): kind is 'csv' (names are the ids, or row numbers
    where the layout has none) or 'images' (names are the file names)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(path, f"holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return [p.name for p in files], np.stack([load_image(p) for p in files]), "images"
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    return [path.name], load_image(path)[None], "images"


def _read_csv(path):
    data = path.read_bytes()
    fields, _ = parse_header(data, path)
    columns = CSV_LAYOUTS.get(tuple(fields))
    if columns is None:
        raise DataError(path, f"header is {','.join(fields)!r}; expected one of "
                              f"{', '.join(repr(','.join(c)) for c in CSV_LAYOUTS)}", line=1)
    table = read_pixel_csv(data, path, columns)
    names = table.keys.tolist() if columns[0] == "id" else list(range(len(table.keys)))
    return names, table.pixels, "csv"


def load_image(path):
    """One image file as uint8 (48, 48) grayscale."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(path, f"not a readable image ({e.__class__.__name__}: {e})") from None
    if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
        gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX if min(gray.size) >= IMAGE_SIZE
                           else Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)
