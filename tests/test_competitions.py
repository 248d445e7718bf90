"""Every layout end to end, offline, as a user runs it: data, folds, cv, blend, report and
predict through the command line, ending in a submission in the sample submission's format."""

import csv

import numpy as np
import pytest

from fer_kaggle.cli import main
from fer_kaggle.data.synthetic import write_demo


def run(tmp_path, *argv):
    base = ["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof"),
            "--submissions-dir", str(tmp_path / "subs")]
    assert main(base + list(argv)) == 0, argv


def submission(tmp_path):
    (path,) = sorted((tmp_path / "subs").glob("*.csv"))
    with open(path) as f:
        return list(csv.reader(f))


def sample(directory, name):
    with open(directory / name) as f:
        return list(csv.reader(f))


def pipeline(tmp_path, source, *data_options, report=True):
    run(tmp_path, "data", "--source", str(source), *data_options)
    run(tmp_path, "folds", "--k", "3")
    run(tmp_path, "cv", "--preset", "smoke", "--variants", "cnn_tiny", "--set", "filters=(4,8)")
    run(tmp_path, "blend", "--method", "mean")
    if report:
        run(tmp_path, "report", "--only", "confusion,misclassified", "--out", str(tmp_path / "reports"))
    return submission(tmp_path)


def test_image_files_with_class_names_end_to_end(tmp_path, capsys):
    directory = write_demo(tmp_path / "cifar", "images", n_train=150, n_test=30, n_classes=4)
    rows = pipeline(tmp_path, directory)
    expected = sample(directory, "sampleSubmission.csv")
    assert rows[0] == ["id", "label"] and [r[0] for r in rows] == [r[0] for r in expected]
    assert {r[1] for r in rows[1:]} <= {"apple", "bagel", "cheese", "dates"}
    from fer_kaggle.atomic import read_json

    confusion = read_json(tmp_path / "reports" / "confusion.json")
    assert confusion["classes"] == ["apple", "bagel", "cheese", "dates"]
    from PIL import Image

    figure = np.asarray(Image.open(tmp_path / "reports" / "misclassified.png").convert("RGB")).astype(int)
    assert (np.abs(figure[..., 0] - figure[..., 1]) > 40).mean() > 0.01  # colour images, not gray ones
    page = (tmp_path / "reports" / "index.html").read_text()
    assert "32x32 RGB" in page and "4 classes" in page
    # A fold model carries its spec: predict brings images of another size and mode to it, names the classes.
    from PIL import Image as PILImage

    new = tmp_path / "new"
    new.mkdir()
    PILImage.fromarray(np.full((64, 50), 200, np.uint8)).save(new / "gray.png")
    PILImage.open(directory / "test" / "1.png").convert("RGBA").save(new / "rgba.png")
    out = tmp_path / "predictions.csv"
    run(tmp_path, "predict", "--model", str(tmp_path / "oof" / "cnn_tiny" / "fold0" / "model.keras"), str(new),
        "--out", str(out))
    predicted = list(csv.reader(open(out)))
    assert predicted[0] == ["file", "label", "apple", "bagel", "cheese", "dates"] and len(predicted) == 3
    assert predicted[1][1] in {"apple", "bagel", "cheese", "dates"}


def test_digit_recognizer_layout_end_to_end(tmp_path):
    directory = write_demo(tmp_path / "digits", "digits", n_train=150, n_test=30, n_classes=3)
    rows = pipeline(tmp_path, directory, report=False)
    assert rows[0] == ["ImageId", "Label"] and [r[0] for r in rows[1:]] == [str(i) for i in range(1, 31)]
    assert {r[1] for r in rows[1:]} <= {"0", "1", "2"}
    from fer_kaggle.atomic import read_json

    config = read_json(tmp_path / "oof" / "cnn_tiny" / "config.json")
    # the demo's "digits" are mirror-symmetric shapes: measured so, whatever the layout's name
    # says (a real digit's mirror changes its class: tests/test_symmetry.py, BENCHMARKS.md)
    spec = read_json(tmp_path / "data" / "spec.json")
    assert spec["competition"] == "Digit Recognizer" and spec["symmetries"]["decided_by"] == "measured"
    assert config["train"]["flip"] is spec["flip"] is True


def test_folder_per_class_with_a_fitted_decision_end_to_end(tmp_path):
    directory = write_demo(tmp_path / "seedlings", "folders", n_train=150, n_test=30, n_classes=3)
    rows = pipeline(tmp_path, directory, "--metric", "macro_f1", report=False)
    expected = sample(directory, "sample_submission.csv")
    assert rows[0] == ["file", "species"] and [r[0] for r in rows] == [r[0] for r in expected]
    from fer_kaggle.atomic import read_json

    (manifest,) = [read_json(p) for p in (tmp_path / "subs").glob("*.json")]
    assert manifest["cv"]["metric"] == "macro_f1" and "class-weighted" in manifest["decision"]
    board = (tmp_path / "oof" / "leaderboard.csv").read_text().splitlines()
    assert board[0].startswith("name,kind,metric,score") and ",macro_f1," in board[1]


def test_a_probability_submission_end_to_end(tmp_path):
    directory = write_demo(tmp_path / "breeds", "images", n_train=150, n_test=30, n_classes=3)
    (directory / "trainLabels.csv").rename(directory / "labels.csv")
    (directory / "sampleSubmission.csv").unlink()
    (directory / "sample_submission.csv").write_text(
        "id,cheese,apple,bagel\n" + "".join(f"{i},0.333,0.333,0.334\n" for i in range(1, 31)))
    rows = pipeline(tmp_path, directory, report=False)
    assert rows[0] == ["id", "cheese", "apple", "bagel"]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert np.allclose(values.sum(axis=1), 1, atol=1e-3) and (values > 0).all()
    from fer_kaggle.atomic import read_json

    (manifest,) = [read_json(p) for p in (tmp_path / "subs").glob("*.json")]
    assert manifest["cv"]["metric"] == "log_loss" and "clipped" in manifest["decision"]


@pytest.mark.parametrize("layout", ["images"])
def test_a_zip_of_the_competition_works_as_the_directory_does(tmp_path, layout):
    import zipfile

    directory = write_demo(tmp_path / "c", layout, n_train=90, n_test=15, n_classes=3)
    path = tmp_path / "c.zip"
    with zipfile.ZipFile(path, "w") as z:
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                z.write(p, "competition/" + p.relative_to(directory).as_posix())  # a folder inside, as Kaggle's
    rows = pipeline(tmp_path, path, report=False)
    assert rows[0] == ["id", "label"] and len(rows) == 16


def test_classes_of_fewer_images_than_folds_end_to_end(tmp_path, capsys):
    """Kaggle's rare classes (here 1, 2 and 4 images, with 5 folds): read, each image in a fold
    of its own, said once by `folds`; every row gets its OOF prediction, the blend's nested fits
    and the report hold every class, the submission is complete."""
    directory = write_demo(tmp_path / "rare", "folders", n_train=150, n_test=30, n_classes=5)
    classes = sorted(p.name for p in (directory / "train").iterdir())
    for name, keep in zip(classes, (1, 2, 4)):
        for extra in sorted((directory / "train" / name).iterdir())[keep:]:
            extra.unlink()
    run(tmp_path, "data", "--source", str(directory))
    run(tmp_path, "folds")
    said = capsys.readouterr().out
    assert f"fewer training rows than folds in 3 classes ({classes[0]} 1, {classes[1]} 2, {classes[2]} 4)" in said
    run(tmp_path, "cv", "--preset", "smoke", "--variants", "cnn_tiny,dnn_s")
    run(tmp_path, "blend")
    run(tmp_path, "report", "--only", "confusion", "--out", str(tmp_path / "reports"))
    from fer_kaggle.atomic import read_json
    from fer_kaggle.data import store

    comp = store.load(tmp_path / "data")
    folds = np.loadtxt(tmp_path / "oof" / "folds.csv", delimiter=",", skiprows=1, dtype=int)[:, 1]
    for c, n in zip(range(3), (1, 2, 4)):
        assert len(set(folds[comp.y_train == comp.spec.labels.index(classes[c])])) == n
    for variant in ("cnn_tiny", "dnn_s"):
        oof = np.load(tmp_path / "oof" / variant / "oof.npy")
        assert oof.shape == (len(comp.y_train), 5) and np.allclose(oof.sum(axis=1), 1, atol=1e-3)
    rows = submission(tmp_path)
    assert [r[0] for r in rows] == [r[0] for r in sample(directory, "sample_submission.csv")]
    assert read_json(tmp_path / "reports" / "confusion.json")["classes"] == classes
