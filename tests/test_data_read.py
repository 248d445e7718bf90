"""Reading FER2013's two layouts from zip, directory and CSV; every bad input names its file and line.
(The other layouts: test_layouts.py.)"""

import numpy as np
import pytest

from conftest import ntu_files, pixel_row, write_files, write_zip
from fer_kaggle.data import read_competition
from fer_kaggle.errors import DataError


def check_ntu(comp, train_rows, test_rows):
    assert comp.x_train.shape == (len(train_rows), 48, 48, 1) and comp.x_train.dtype == np.uint8
    assert comp.y_train.tolist() == [c for c, _ in train_rows]
    assert comp.x_train[3].ravel().tolist() == list(map(int, train_rows[3][1].split()))
    assert comp.test_ids.tolist() == [str(i) for i, _ in test_rows]
    assert comp.x_test[-1].ravel().tolist() == list(map(int, test_rows[-1][1].split()))
    assert comp.class_names[0] == "angry" and comp.class_names[6] == "neutral"
    assert comp.spec.input_shape == (48, 48, 1) and comp.spec.labels == tuple("0123456") and comp.spec.flip


def test_ntu_from_directory_zip_and_csv(tmp_path):
    files, train_rows, test_rows = ntu_files()
    directory = write_files(tmp_path / "dir", files)
    zipped = write_zip(tmp_path / "comp.zip", files)
    for source in (directory, zipped, directory / "train.csv"):
        comp = read_competition(source)
        check_ntu(comp, train_rows, test_rows)
        assert comp.sample_ids.tolist() == [str(i) for i in range(len(test_rows))]
    # the same bytes give the same train sha256 whatever the container
    assert read_competition(directory).train_sha256 == read_competition(zipped).train_sha256


def test_zip_with_a_folder_inside_and_directory_holding_the_zip(tmp_path):
    files, train_rows, test_rows = ntu_files()
    (tmp_path / "download").mkdir()
    nested = write_zip(tmp_path / "download" / "comp.zip", {f"comp/{k}": v for k, v in files.items()})
    check_ntu(read_competition(nested), train_rows, test_rows)
    check_ntu(read_competition(tmp_path / "download"), train_rows, test_rows)


def fer2013_text(rng, usages=("Training",) * 21 + ("PublicTest",) * 4 + ("PrivateTest",) * 3):
    rows = [(i % 7, pixel_row(rng), u) for i, u in enumerate(usages)]
    return "emotion,pixels,Usage\n" + "".join(f"{c},{p},{u}\n" for c, p, u in rows), rows


def test_fer2013_layout_from_csv_directory_and_zip(tmp_path):
    text, rows = fer2013_text(np.random.default_rng(1))
    csv = write_files(tmp_path / "d", {"fer2013.csv": text}) / "fer2013.csv"
    zipped = write_zip(tmp_path / "fer2013.zip", {"fer2013/fer2013.csv": text})
    for source in (csv, csv.parent, zipped):
        comp = read_competition(source)
        train = [r for r in rows if r[2] == "Training"]
        test = [r for r in rows if r[2] != "Training"]
        assert comp.y_train.tolist() == [c for c, _, _ in train]
        assert comp.test_ids.tolist() == [str(i) for i in range(len(test))]  # numbered in file order
        assert comp.x_test[0].ravel().tolist() == list(map(int, test[0][1].split()))
        assert comp.test_labels.tolist() == [c for c, _, _ in test]


def test_bom_crlf_whitespace_and_quotes_are_accepted(tmp_path):
    files, train_rows, test_rows = ntu_files()
    messy = {}
    for name, text in files.items():
        lines = text.splitlines()
        lines = [lines[0]] + [f"  {ln.replace(',', ' , ', 1)}  " for ln in lines[1:]] + [""]
        messy[name] = "\ufeff" + "\r\n".join(lines)
    messy["test.csv"] = messy["test.csv"].replace(" , ", ',"', 1).replace("\r\n", '"\r\n', 2).replace('"\r\n', "\r\n", 1)
    comp = read_competition(write_files(tmp_path / "messy", messy))
    check_ntu(comp, train_rows, test_rows)


def replace_line(files, name, line_no, new_line):
    lines = files[name].splitlines()
    lines[line_no - 1] = new_line
    return {**files, name: "\n".join(lines) + "\n"}


def bad_cases():
    files, train_rows, _ = ntu_files()
    ok = pixel_row(np.random.default_rng(5))
    short = " ".join(ok.split()[:-1])
    yield "wrong header", replace_line(files, "train.csv", 1, "emotion,feature"), "train.csv", 1, "header"
    yield "missing pixel", replace_line(files, "train.csv", 4, f"2,{short}"), "train.csv", 4, "2303 values"
    yield "extra pixel", replace_line(files, "train.csv", 5, f"2,{ok} 7"), "train.csv", 5, "2305 values"
    yield "pixel 256", replace_line(files, "train.csv", 6, f"2,{ok.replace(' ', ' 256 ', 1)}"[:-4]), "train.csv", 6, "'256'"
    yield "pixel float", replace_line(files, "train.csv", 7, "2," + ok.replace(" ", " 12.5 ", 1).rsplit(" ", 1)[0]), "train.csv", 7, "'12.5'"
    yield "pixel negative", replace_line(files, "test.csv", 3, "1," + ok.replace(" ", " -3 ", 1).rsplit(" ", 1)[0]), "test.csv", 3, "'-3'"
    yield "pixel text", replace_line(files, "test.csv", 4, "2,abc " + ok.split(" ", 1)[1]), "test.csv", 4, "'abc'"
    yield "label 7", replace_line(files, "train.csv", 8, f"7,{ok}"), "train.csv", 8, "label 7 is outside 0-6"
    yield "label text", replace_line(files, "train.csv", 9, f"happy,{ok}"), "train.csv", 9, "not an integer"
    yield "duplicate id", replace_line(files, "test.csv", 5, f"0,{ok}"), "test.csv", 5, "duplicate id 0"
    yield "empty id", replace_line(files, "test.csv", 6, f",{ok}"), "test.csv", 6, "id is missing"
    yield "id missing from test", replace_line(files, "test.csv", 11, f"99,{ok}"), "sample_submission.csv", None, \
        "id '9' is not a test id"
    yield "no comma", replace_line(files, "train.csv", 3, "2"), "train.csv", 3, "comma-separated"
    yield "empty train", {**files, "train.csv": ""}, "train.csv", 1, "empty file"
    yield "header only", {**files, "train.csv": "label,feature\n"}, "train.csv", 2, "no data rows"


@pytest.mark.parametrize("case", list(bad_cases()), ids=lambda c: c[0])
def test_bad_input_names_file_line_and_problem(tmp_path, case):
    _, files, bad_file, line, words = case
    for source in (write_files(tmp_path / "dir", files), write_zip(tmp_path / "c.zip", files)):
        with pytest.raises(DataError) as err:
            read_competition(source)
        message = str(err.value)
        assert bad_file in message and words in message, message
        if line is not None:
            assert err.value.line == line and f"line {line}:" in message, message


def test_bad_usage_in_fer2013(tmp_path):
    text, _ = fer2013_text(np.random.default_rng(2), usages=("Training",) * 7 + ("Validation",) + ("PublicTest",))
    with pytest.raises(DataError, match=r"fer2013.csv, line 9: Usage 'Validation'"):
        read_competition(write_files(tmp_path, {"fer2013.csv": text}) / "fer2013.csv")


def test_truncated_and_wrong_zip(tmp_path):
    files, _, _ = ntu_files()
    good = write_zip(tmp_path / "good.zip", files).read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good[: len(good) // 2])
    wrong = tmp_path / "wrong.zip"
    wrong.write_bytes(b"this is not a zip file at all")
    for path in (truncated, wrong):
        with pytest.raises(DataError, match=path.name):
            read_competition(path)
    corrupt = bytearray(good)
    middle = good.index(b"train.csv") + 200
    corrupt[middle : middle + 50] = b"\x00" * 50
    (tmp_path / "corrupt.zip").write_bytes(bytes(corrupt))
    with pytest.raises(DataError, match="corrupt.zip"):
        read_competition(tmp_path / "corrupt.zip")


def test_missing_source_and_source_without_competition_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_competition(tmp_path / "nope.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is in no layout this toolkit reads"):
        read_competition(tmp_path / "empty")


def test_device_npz_reads_the_same_pixels_and_data_identity_as_the_csv(tmp_path):
    import io

    from PIL import Image

    from fer_kaggle.data.demo import generate

    images, _ = generate(60, seed=9)
    labels = np.arange(60) % 7  # every class at least 3 times in the 50 training rows
    blobs = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(b.tobytes())).convert("L")) for b in blobs])
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    np.savez(tmp_path / "device.npz", jpeg=np.concatenate(blobs), offsets=offsets,
             train_labels=labels[:50].astype(np.int8), test_ids=np.arange(10, dtype=np.int32))
    comp = read_competition(tmp_path / "device.npz")
    assert np.array_equal(comp.x_train[..., 0], decoded[:50]) and np.array_equal(comp.x_test[..., 0], decoded[50:])
    assert comp.y_train.tolist() == labels[:50].tolist() and comp.test_ids.tolist() == [str(i) for i in range(10)]
    # The same rows as Kaggle's train.csv have the same identity, so folds made from either fit both.
    text = "label,feature\n" + "".join(f"{c},{' '.join(map(str, im.ravel()))}\n" for c, im in zip(labels[:50], decoded[:50]))
    test = "id,feature\n" + "".join(f"{i},{' '.join(map(str, im.ravel()))}\n" for i, im in enumerate(decoded[50:]))
    csv_comp = read_competition(write_files(tmp_path / "csv", {"train.csv": text, "test.csv": test}))
    assert csv_comp.train_sha256 == comp.train_sha256
    np.savez(tmp_path / "bad.npz", jpeg=np.concatenate(blobs), offsets=offsets[:-1],
             train_labels=labels[:50].astype(np.int8), test_ids=np.arange(10, dtype=np.int32))
    with pytest.raises(DataError, match="bad.npz: offsets describe 59 images"):
        read_competition(tmp_path / "bad.npz")
