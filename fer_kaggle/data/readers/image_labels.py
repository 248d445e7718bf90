"""Image files with a labels CSV, as CIFAR-10, Aerial Cactus or Dog Breed Identification: a
folder of training images, a CSV naming each one's label (`id,label`, or the competition's
own column names; ids with or without the file extension), a folder of test images, and the
sample submission."""

from pathlib import PurePosixPath

from fer_kaggle.data.files import is_image_name
from fer_kaggle.data.readers.common import (Raw, check_unique, decode_sets, find_sample, identity_of,
                                            match_test_files, read_sample, read_table, read_test_labels, short)
from fer_kaggle.errors import DataError

TEST_FOLDERS = ("test", "test_images", "testing")


def _images_by_folder(files):
    folders = {}
    for name in files.names():
        if "/" in name and is_image_name(name):
            folders.setdefault(name.split("/", 1)[0], []).append(name)
    return folders


def _check_only_images(files, folder):
    stray = [n for n in files.under(folder) if not is_image_name(n)]
    if stray:
        raise DataError(files.label(stray[0]), f"is not an image file (png, jpg, bmp, webp) among the images of "
                                               f"{folder}/")


def _labels_csv(files):
    sample = find_sample(files)
    candidates = [n for n in files.csvs() if n != sample and n.lower() not in ("test.csv", "test_labels.csv")]
    preferred = [n for n in candidates if "label" in n.lower() or "train" in n.lower()]
    return (preferred or candidates or [None])[0]


class ImageLabels:
    name = "image-files"

    def detect(self, files):
        folders = _images_by_folder(files)
        return _labels_csv(files) is not None and any(f not in TEST_FOLDERS for f in folders)

    def read(self, files, options):
        folders = _images_by_folder(files)
        labels_name = _labels_csv(files)
        where = files.label(labels_name)
        header, rows, lines = read_table(files, labels_name, required_columns=2)
        if len(header) > 2 and not any(h.lower() in ("label", "labels", "class", "category") for h in header[1:]):
            raise DataError(where, f"header {short(','.join(header))!r}: expected an id column and one label column "
                                   f"(one label per image)", line=1)
        label_col = next((i for i, h in enumerate(header[1:], 1) if h.lower() in ("label", "labels", "class",
                                                                                   "category")), 1)
        ids = [r[0] for r in rows]
        check_unique(ids, lines, where)
        for r, line in zip(rows, lines):
            if not r[label_col]:
                raise DataError(where, f"{header[label_col]} of id {short(r[0])!r} is missing", line=line)
        train_folder = self._train_folder(folders, ids, where)
        by_name = {}
        for name in folders[train_folder]:
            path = PurePosixPath(name)
            by_name.setdefault(path.name, name)
            by_name.setdefault(path.stem, name)
            by_name.setdefault(name[len(train_folder) + 1:], name)
        train_names = []
        for i, line in zip(ids, lines):
            if i not in by_name:
                raise DataError(where, f"id {short(i)!r} names no image in {train_folder}/ (a missing file)", line=line)
            train_names.append(by_name[i])
        unlabeled = set(folders[train_folder]) - set(train_names)
        if unlabeled:
            first = sorted(unlabeled)[0]
            raise DataError(files.label(first), f"has no label in {labels_name} ({len(unlabeled)} images without one)")
        test_folder = next((f for f in folders if f.lower() in TEST_FOLDERS), None)
        if test_folder is None:
            raise DataError(files.path, f"has training images in {train_folder}/ but no test/ folder of images; "
                                        f"found: {files.describe()}")
        _check_only_images(files, train_folder)
        _check_only_images(files, test_folder)
        test_names = sorted(folders[test_folder], key=_natural)
        sample = read_sample(files)
        test_ids = match_test_files(files, test_names, sample, f"{test_folder}/")
        x_train, x_test, policy = decode_sets(files, train_names, test_names, options)
        return Raw(layout=self.name, x_train=x_train, y_train=[r[label_col] for r in rows], x_test=x_test,
                   test_ids=test_ids, train_sha256=identity_of(files, labels_name, train_names), resize=policy,
                   test_ids_kind="file", id_column=sample.columns[0] if sample else header[0],
                   label_column=header[label_col], train_label_name=where, train_lines=lines, sample=sample,
                   test_labels=read_test_labels(files, test_ids))

    @staticmethod
    def _train_folder(folders, ids, where):
        wanted = set(ids)
        best, hits = None, 0
        for folder, names in folders.items():
            if folder.lower() in TEST_FOLDERS:
                continue
            keys = {PurePosixPath(n).stem for n in names} | {PurePosixPath(n).name for n in names}
            found = len(wanted & keys)
            if found > hits:
                best, hits = folder, found
        if best is None:
            raise DataError(where, f"no folder of images holds the ids it names (first id {short(ids[0])!r})")
        return best


def _natural(name):
    stem = PurePosixPath(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)
