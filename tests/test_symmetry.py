"""Symmetries measured from the competition's own images, not taken from its name."""

import numpy as np
import pytest

from fer_kaggle.data import symmetry


def bars(kind, n=600, side=24, seed=0):
    """Noisy images of three classes: `rows`: a bright band at the top, middle or bottom (a mirror
    keeps the class, a vertical flip swaps top and bottom); `sides`: a band at the left, centre or
    right (a mirror swaps left and right, a vertical flip keeps the class)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(60, 25, (n, side, side, 1))
    third = side // 3
    for i, c in enumerate(y):
        band = slice(c * third, (c + 1) * third)
        if kind == "rows":
            x[i, band, :, 0] += 120
        else:
            x[i, :, band, 0] += 120
    return np.clip(x, 0, 255).astype(np.uint8), y


def test_a_mirror_that_keeps_the_class_is_measured_as_a_symmetry_and_one_that_swaps_classes_is_not():
    rows = symmetry.measure(*bars("rows"))
    assert rows["hflip"]["keeps"] is True and rows["vflip"]["keeps"] is False
    sides = symmetry.measure(*bars("sides"))
    assert sides["hflip"]["keeps"] is False and sides["vflip"]["keeps"] is True
    assert sides["rot90"]["keeps"] is False  # a quarter turn makes a column band a row band
    assert rows["hflip"]["retained"] > 0.9 and sides["hflip"]["retained"] < 0.2


def test_too_little_to_go_on_says_nothing():
    x, y = bars("rows", n=60)
    assert symmetry.measure(x, y) == {}
    noise = np.random.default_rng(1).integers(0, 256, (600, 24, 24, 1), dtype=np.uint8)
    assert symmetry.measure(noise, np.arange(600) % 3) == {}  # a classifier no better than chance


def test_a_known_competition_s_prior_yields_to_firm_evidence(tmp_path):
    """Images in Digit Recognizer's layout (whose prior is: no mirrors) that a mirror does not
    change, as Fashion-MNIST's clothing: the spec uses mirrors, says why, and --no-flip still wins."""
    from fer_kaggle.data import read_competition, store

    x, y = bars("rows", n=600, side=28)
    test = bars("rows", n=30, side=28, seed=1)[0]
    pixels = ",".join(f"pixel{i}" for i in range(28 * 28))
    (tmp_path / "comp").mkdir()
    (tmp_path / "comp" / "train.csv").write_text(
        f"label,{pixels}\n" + "".join(f"{c}," + ",".join(map(str, im.reshape(-1))) + "\n" for im, c in zip(x, y)))
    (tmp_path / "comp" / "test.csv").write_text(
        f"{pixels}\n" + "".join(",".join(map(str, im.reshape(-1))) + "\n" for im in test))
    (tmp_path / "comp" / "sample_submission.csv").write_text(
        "ImageId,Label\n" + "".join(f"{i},0\n" for i in range(1, 31)))
    comp = read_competition(tmp_path / "comp")
    assert comp.spec.competition == "Digit Recognizer"
    assert comp.spec.flip is True and comp.spec.symmetries["decided_by"] == "measured"
    assert "flip" not in comp.spec.guessed
    line = "\n".join(comp.spec.summary_lines())
    assert "horizontal flips used" in line and "(measured: a mirrored held-out image keeps" in line
    overridden, _ = store.prepare(tmp_path / "data", source=tmp_path / "comp", overrides={"flip": False})
    assert overridden.spec.flip is False and overridden.spec.symmetries["decided_by"] == "--flip/--no-flip"


@pytest.mark.parametrize("kind", ["sides"])
def test_a_mirror_that_changes_the_class_turns_flips_off_without_a_known_competition(tmp_path, kind):
    from PIL import Image

    from fer_kaggle.data import read_competition

    x, y = bars(kind, n=300, side=24)
    for i, (image, c) in enumerate(zip(x, y)):
        folder = tmp_path / "comp" / "train" / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"{i}.png")
    (tmp_path / "comp" / "test").mkdir()
    for i, image in enumerate(bars(kind, n=6, side=24, seed=2)[0]):
        Image.fromarray(image[..., 0]).save(tmp_path / "comp" / "test" / f"t{i}.png")
    spec = read_competition(tmp_path / "comp").spec
    assert spec.flip is False and spec.symmetries["decided_by"] == "measured" and "flip" not in spec.guessed
