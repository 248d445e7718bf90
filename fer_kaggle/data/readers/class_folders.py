"""One folder per class, as Plant Seedlings Classification: `train/<class>/*.png|jpg`, a flat
`test/` folder of images, and the sample submission (`file,species`). Class names are the
folder names, in alphanumeric order (as Keras's `image_dataset_from_directory`)."""

from pathlib import PurePosixPath

from fer_kaggle.data.files import is_image_name
from fer_kaggle.data.readers.common import Raw, decode_sets, identity_of, match_test_files, read_sample, read_test_labels
from fer_kaggle.data.readers.image_labels import TEST_FOLDERS, _natural
from fer_kaggle.errors import DataError

TRAIN_FOLDERS = ("train", "training", "train_images")


class ClassFolders:
    name = "class-folders"

    def _train_folder(self, files):
        return next((f for f in files.folders() if f.lower() in TRAIN_FOLDERS), None)

    def detect(self, files):
        train = self._train_folder(files)
        return train is not None and any(n.count("/") >= 2 for n in files.under(train))

    def read(self, files, options):
        train = self._train_folder(files)
        members = files.under(train)
        classes = sorted({n.split("/")[1] for n in members if n.count("/") >= 2})
        loose = [n for n in members if n.count("/") == 1]
        if loose:
            raise DataError(files.label(loose[0]), f"sits in {train}/ itself, not in a class folder {train}/<class>/")
        train_names, labels = [], []
        for c in classes:
            inside = sorted((n for n in files.under(f"{train}/{c}")), key=_natural)
            not_images = [n for n in inside if not is_image_name(n)]
            if not_images:
                raise DataError(files.label(not_images[0]), "is not an image file (png, jpg, bmp, webp) in a class "
                                                            "folder")
            if not inside:
                raise DataError(files.path, f"class folder {train}/{c}/ is empty")
            train_names += inside
            labels += [c] * len(inside)
        empty = [f for f in _empty_class_folders(files, train) if f not in classes]
        if empty:
            raise DataError(files.path, f"class folder {train}/{empty[0]}/ is empty")
        test = next((f for f in files.folders() if f.lower() in TEST_FOLDERS), None)
        if test is None:
            raise DataError(files.path, f"has class folders in {train}/ but no test/ folder; found: {files.describe()}")
        test_names = sorted((n for n in files.under(test) if is_image_name(n)), key=_natural)
        if not test_names:
            raise DataError(files.path, f"{test}/ holds no images")
        sample = read_sample(files)
        test_ids = match_test_files(files, test_names, sample, f"{test}/")
        x_train, x_test, policy = decode_sets(files, train_names, test_names, options)
        return Raw(layout=self.name, x_train=x_train, y_train=labels, x_test=x_test, test_ids=test_ids,
                   train_sha256=identity_of(files, None, train_names), resize=policy, test_ids_kind="file",
                   id_column=sample.columns[0] if sample else "file",
                   label_column=sample.columns[1] if sample and len(sample.columns) == 2 else "label",
                   train_label_name=f"{files.path}:{train}/", train_lines=[PurePosixPath(n).name for n in train_names],
                   sample=sample, test_labels=read_test_labels(files, test_ids))


def _empty_class_folders(files, train):
    """Class folders with no file at all (a directory source lists folders; a zip lists none)."""
    from pathlib import Path

    if files.zip is not None:
        return [n.rstrip("/").split("/")[-1] for n in files.zip.namelist()
                if n.endswith("/") and n.rstrip("/").count("/") >= 1 and n.rstrip("/").split("/")[-2] == train]
    root = files.path if files.path.is_dir() else files.path.parent
    folder = Path(root) / train
    return [p.name for p in folder.iterdir() if p.is_dir() and not any(p.iterdir())] if folder.is_dir() else []
