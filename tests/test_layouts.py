"""Every layout the reader accepts, from a directory and from a zip, and every bad input of the
issue's list: one line naming the file (and row or image) and the problem, nothing written."""

import shutil
import zipfile

import numpy as np
import pytest

from fer_kaggle.data import read_competition, store
from fer_kaggle.data.synthetic import write_demo
from fer_kaggle.errors import DataError


def demo(tmp_path, layout, **kw):
    return write_demo(tmp_path / layout, layout, **{"n_train": 60, "n_test": 12, "n_classes": 3, **kw})


def zipped(directory, path):
    with zipfile.ZipFile(path, "w") as z:
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(directory).as_posix())
    return path


def labels_of(directory, name="test_labels.csv"):
    rows = (directory / name).read_text().splitlines()[1:]
    return dict(r.split(",") for r in rows)


def test_image_files_with_a_labels_csv_read_as_cifar10_is(tmp_path):
    directory = demo(tmp_path, "images")
    for source in (directory, zipped(directory, tmp_path / "images.zip")):
        comp = read_competition(source)
        spec = comp.spec
        assert comp.x_train.shape == (60, 32, 32, 3) and comp.x_test.shape == (12, 32, 32, 3)
        assert spec.layout == "image-files" and spec.labels == ("apple", "bagel", "cheese")
        assert spec.label_kind == "name" and spec.submission == "label" and spec.test_ids == "file"
        assert spec.submission_columns == ("id", "label") and spec.flip
        # ids as the sample writes them (file names without .png), in the test images' natural order
        assert comp.test_ids.tolist() == [str(i) for i in range(1, 13)]
        truth = labels_of(directory)
        assert [spec.labels[c] for c in comp.test_labels] == [truth[i] for i in comp.test_ids]
        from PIL import Image

        first = np.asarray(Image.open(directory / "train" / "1.png"))
        assert np.array_equal(comp.x_train[0], first)


def test_pixel_columns_read_as_digit_recognizer_is(tmp_path):
    directory = demo(tmp_path, "digits")
    comp = read_competition(directory)
    spec = comp.spec
    assert comp.x_train.shape == (60, 28, 28, 1) and spec.labels == ("0", "1", "2")
    assert spec.test_ids == "row" and spec.id_start == 1 and comp.test_ids[0] == "1"
    assert spec.submission_columns == ("ImageId", "Label") and not spec.flip and spec.competition == "Digit Recognizer"
    row = (directory / "train.csv").read_text().splitlines()[1].split(",")
    assert comp.y_train[0] == int(row[0]) and comp.x_train[0].ravel().tolist() == list(map(int, row[1:]))


def test_one_folder_per_class_with_mixed_sizes_is_resized_to_one(tmp_path):
    directory = demo(tmp_path, "folders")
    for source in (directory, zipped(directory, tmp_path / "folders.zip")):
        comp = read_competition(source)
        spec = comp.spec
        assert spec.layout == "class-folders" and spec.labels == ("apple", "bagel", "cheese")
        assert spec.resize == "resize" and 32 <= spec.height <= 40 and comp.x_train.shape[1:] == spec.input_shape
        assert spec.submission_columns == ("file", "species") and comp.test_ids[0] == "t00000.png"
        assert comp.x_test.shape == (12, spec.height, spec.width, 3)


def test_image_modes_and_formats_become_the_specs_channels(tmp_path):
    """Grayscale, RGB, RGBA, palette images; PNG, JPEG, BMP, WebP: RGB wins when any image has colour."""
    from PIL import Image

    directory = demo(tmp_path, "images")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    conversions = {"2": ("L", "png"), "3": ("RGBA", "png"), "4": ("P", "png"), "5": ("RGB", "jpg"),
                   "6": ("RGB", "bmp"), "7": ("RGB", "webp")}
    text = (directory / "trainLabels.csv").read_text()
    for i, (mode, ext) in conversions.items():
        (directory / "train" / f"{i}.png").unlink()
        image = Image.fromarray(pixels).convert(mode)
        image.save(directory / "train" / f"{i}.{ext}")
    (directory / "trainLabels.csv").write_text(text)  # ids without extension match any file type
    comp = read_competition(directory)
    assert comp.spec.channels == 3 and comp.x_train.shape == (60, 32, 32, 3)
    gray = np.asarray(Image.fromarray(pixels).convert("L"))
    assert np.array_equal(comp.x_train[1], np.repeat(gray[..., None], 3, axis=-1))
    assert np.array_equal(comp.x_train[5], pixels)  # bmp: lossless
    assert np.array_equal(comp.x_train[2], pixels)  # RGBA fully opaque: composited onto white, the same pixels


def test_the_cache_decodes_once_and_a_second_run_starts_from_it(tmp_path, monkeypatch):
    from fer_kaggle.data import decode

    directory = demo(tmp_path, "images")
    first, _ = store.prepare(tmp_path / "data", source=directory)
    monkeypatch.setattr(decode, "decode_into", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    again = store.load(tmp_path / "data")
    assert isinstance(again.x_train, np.memmap) and np.array_equal(again.x_train, first.x_train)
    assert again.spec == first.spec


def test_a_cache_that_would_not_fit_the_disk_is_refused_before_decoding(tmp_path, monkeypatch):
    import collections

    from fer_kaggle.data import cache

    directory = demo(tmp_path, "images")
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    with pytest.raises(DataError, match=r"would not fit the free disk"):
        store.prepare(tmp_path / "data", source=directory)
    assert not (tmp_path / "data").exists()


def one_line(error):
    text = str(error.value)
    assert "\n" not in text and len(text) < 400, text
    return text


def corrupt(directory):
    (directory / "train" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


def zero_byte(directory):
    (directory / "train" / "5.png").write_bytes(b"")


def truncated(directory):
    data = (directory / "train" / "5.png").read_bytes()
    (directory / "train" / "5.png").write_bytes(data[: len(data) // 2])


def not_an_image(directory):
    (directory / "train" / "5.png").write_text("id,label\n1,apple\n")


def missing_file(directory):
    (directory / "train" / "5.png").unlink()


def no_label(directory):
    shutil.copy(directory / "train" / "5.png", directory / "train" / "999.png")


def duplicate_id(directory):
    with open(directory / "trainLabels.csv", "a") as f:
        f.write("5,apple\n")


def rare_class(directory):
    lines = (directory / "trainLabels.csv").read_text().splitlines()
    lines[3] = lines[3].split(",")[0] + ",kiwi"
    (directory / "trainLabels.csv").write_text("\n".join(lines) + "\n")


def sample_mismatch(directory):
    lines = (directory / "sampleSubmission.csv").read_text().splitlines()
    lines[4] = "77,apple"
    (directory / "sampleSubmission.csv").write_text("\n".join(lines) + "\n")


def unlisted_test_image(directory):
    (directory / "sampleSubmission.csv").write_text(
        "\n".join((directory / "sampleSubmission.csv").read_text().splitlines()[:-1]) + "\n")


def sample_unreadable(directory):
    (directory / "sampleSubmission.csv").write_text("id,a,b\n" + "".join(f"{i},0.5,0.5\n" for i in range(1, 13)))


BAD_IMAGE_INPUTS = [
    ("an image that does not decode", corrupt, "5.png", "not a readable image"),
    ("a zero-byte file", zero_byte, "5.png", "zero-byte"),
    ("a truncated image", truncated, "5.png", "truncated"),
    ("a non-image file among the images", not_an_image, "5.png", "not a readable image"),
    ("a labels CSV naming a missing file", missing_file, "trainLabels.csv, line 6", "names no image"),
    ("an image with no label", no_label, "999.png", "has no label"),
    ("duplicate ids", duplicate_id, "trainLabels.csv, line 62", "duplicate id 5"),
    ("test ids that do not match the sample", sample_mismatch, "sampleSubmission.csv, line 5", "id '77' has no test"),
    ("a test image the sample does not list", unlisted_test_image, "12.png", "does not list"),
    ("a sample submission that cannot be understood", sample_unreadable, "sampleSubmission.csv, line 1",
     "pass --submission"),
]


def test_a_class_seen_only_once_is_read_as_a_class(tmp_path):
    """Kaggle's rare classes are the competition's: read, not refused (folds place them,
    tests/test_competitions.py runs one end to end)."""
    directory = demo(tmp_path, "images")
    rare_class(directory)
    comp = read_competition(directory)
    kiwi = comp.spec.labels.index("kiwi")
    assert np.sum(comp.y_train == kiwi) == 1 and comp.spec.num_classes == 4


@pytest.mark.parametrize("case", BAD_IMAGE_INPUTS, ids=lambda c: c[0])
def test_bad_image_inputs_are_one_line_naming_file_and_problem(tmp_path, case):
    _, spoil, where, words = case
    directory = demo(tmp_path, "images")
    spoil(directory)
    with pytest.raises(DataError) as error:
        store.prepare(tmp_path / "data", source=directory)
    text = one_line(error)
    assert where in text and words in text, text
    assert not (tmp_path / "data").exists()  # nothing half-written


def test_a_stray_file_and_an_empty_class_folder_in_class_folders(tmp_path):
    directory = demo(tmp_path, "folders")
    (directory / "train" / "bagel" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as error:
        read_competition(directory)
    assert "notes.txt" in one_line(error) and "not an image file" in str(error.value)
    (directory / "train" / "bagel" / "notes.txt").unlink()
    (directory / "train" / "durian").mkdir()
    with pytest.raises(DataError) as error:
        read_competition(directory)
    assert "class folder train/durian/ is empty" in one_line(error)


def test_mixed_sizes_are_refused_when_the_spec_says_fixed(tmp_path):
    directory = demo(tmp_path, "folders")
    with pytest.raises(DataError) as error:
        read_competition(directory, {"resize": "fixed"})
    assert "the spec says every image is" in one_line(error) and "--image-size" in str(error.value)
    assert read_competition(directory, {"image_size": [24, 24]}).x_train.shape[1:] == (24, 24, 3)


def test_more_classes_than_the_stated_limit_are_refused(tmp_path, monkeypatch):
    from fer_kaggle.data import infer

    monkeypatch.setattr(infer, "MAX_CLASSES", 2)
    with pytest.raises(DataError) as error:
        read_competition(demo(tmp_path, "images"))
    assert "has 3 classes, more than the 2" in one_line(error)


def test_an_unknown_layout_lists_a_few_names_not_every_member(tmp_path):
    directory = tmp_path / "many"
    (directory / "stuff").mkdir(parents=True)
    for i in range(500):
        (directory / "stuff" / f"{i}.dat").write_bytes(b"x")
    (directory / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError) as error:
        read_competition(directory)
    assert "is in no layout" in one_line(error)


def test_a_digit_recognizer_csv_with_a_bad_pixel_names_row_and_column(tmp_path):
    directory = demo(tmp_path, "digits")
    lines = (directory / "train.csv").read_text().splitlines()
    cells = lines[7].split(",")
    cells[101] = "300"
    lines[7] = ",".join(cells)
    (directory / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        read_competition(directory)
    assert "train.csv, line 8: pixel100 is 300, not an integer in 0-255" in one_line(error)


def test_the_device_pack_carries_any_competition_with_its_identity(tmp_path):
    from fer_kaggle.data.readers.device import write_pack

    comp, _ = store.prepare(tmp_path / "data", source=demo(tmp_path, "images"))
    write_pack(tmp_path / "pack.npz", comp)
    packed = read_competition(tmp_path / "pack.npz")
    assert np.array_equal(packed.x_train, comp.x_train) and np.array_equal(packed.x_test, comp.x_test)
    assert packed.train_sha256 == comp.train_sha256 and packed.spec.identity_sha256 == comp.spec.identity_sha256
    assert packed.test_ids.tolist() == comp.test_ids.tolist() and packed.spec.labels == comp.spec.labels
