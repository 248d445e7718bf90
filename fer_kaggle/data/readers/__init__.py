"""One reader per competition layout, behind one interface: `detect(files) -> bool` and
`read(files, options) -> Raw`. A new layout is one new module here and one line below."""

from fer_kaggle.data.readers.class_folders import ClassFolders
from fer_kaggle.data.readers.common import Options, Raw
from fer_kaggle.data.readers.device import DevicePack
from fer_kaggle.data.readers.image_labels import ImageLabels
from fer_kaggle.data.readers.pixel_columns import PixelColumns
from fer_kaggle.data.readers.pixel_text import FER2013, NTU

READERS = (NTU(), FER2013(), PixelColumns(), ImageLabels(), ClassFolders())
LAYOUTS = ("NTU pixel CSVs (train.csv = label,feature)", "fer2013.csv (emotion,pixels,Usage)",
           "pixel columns (train.csv = label,pixel0,...)", "image files with a labels CSV (train/ + trainLabels.csv)",
           "one folder per class (train/<class>/*.png + test/)")

__all__ = ["READERS", "LAYOUTS", "Options", "Raw", "DevicePack", "read_raw"]


def read_raw(path, options=None):
    """The competition at `path` read by the first reader that recognizes its files."""
    from pathlib import Path

    from fer_kaggle.data.files import CompetitionFiles
    from fer_kaggle.errors import DataError

    options = options or Options()
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".npz":
        return DevicePack().read(path, options)
    files = CompetitionFiles(path)
    for reader in READERS:
        if reader.detect(files):
            return reader.read(files, options)
    train = files.find("train.csv")
    if train is not None and not files.folders():
        from fer_kaggle.data.parse import parse_header
        from fer_kaggle.data.readers.common import short

        header = ",".join(parse_header(files.head(train, 65536), files.label(train))[0])
        raise DataError(files.label(train), f"header is {short(header, 60)!r}, expected 'label,feature' (FER's NTU "
                                            f"layout) or a label column and pixel0..pixelN columns", line=1)
    raise DataError(path, f"is in no layout this toolkit reads ({'; '.join(LAYOUTS)}); found: {files.describe()}")
