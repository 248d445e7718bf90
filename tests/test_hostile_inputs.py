"""Inputs that attack, and photographs as cameras write them: each is read as a viewer shows it,
or refused by `fer-kaggle data` in one line naming the file with exit status 2 and nothing
written; never a traceback, never a decode of billions of pixels."""

import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_kaggle.data import read_competition
from fer_kaggle.data.synthetic import write_demo

ROOT = Path(__file__).resolve().parents[1]


def demo(tmp_path):
    return write_demo(tmp_path / "comp", "images", n_train=60, n_test=12, n_classes=3)


def refused(tmp_path, source, *words):
    """`fer-kaggle data --source` on it: exit 2, one line holding `words`, no data/ folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAGGLE_CONFIG_DIR": str(tmp_path / "no-kaggle")}
    env.pop("KAGGLE_API_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "fer_kaggle", "data", "--source", str(source)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "data").exists()
    return lines[0]


def png_header_only(width, height):
    """A tiny PNG whose header declares width x height 8-bit gray pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    directory = demo(tmp_path)
    (directory / "train" / "5.png").write_bytes(png_header_only(50_000, 50_000))  # 2.5 gigapixels in 100 bytes
    refused(tmp_path, directory, "5.png", "megapixel")


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path):
    directory = demo(tmp_path)
    (directory / "train" / "5.png").write_bytes(png_header_only(12_000, 6_000))  # 72 MP: within Pillow's 2x, over ours
    refused(tmp_path, directory, "5.png", "12000x6000", "64-megapixel limit")


def test_a_zip_bomb_is_refused_before_anything_is_read(tmp_path):
    directory = demo(tmp_path)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(directory).as_posix())
        z.writestr("extra.csv", b"\0" * (80 * 2**20))  # 80 MiB of zeros from about 80 KiB
    refused(tmp_path, bomb, "bomb.zip:extra.csv", "zip bomb")


def test_a_labels_csv_with_a_field_over_the_csv_limit_is_one_line(tmp_path):
    directory = demo(tmp_path)
    with open(directory / "trainLabels.csv", "a") as f:
        f.write('7,"' + "x" * 200_000 + '"\n')
    refused(tmp_path, directory, "trainLabels.csv", "not a readable CSV")


def test_a_labels_csv_with_a_nul_byte_is_one_line(tmp_path):
    directory = demo(tmp_path)
    text = (directory / "trainLabels.csv").read_bytes()
    (directory / "trainLabels.csv").write_bytes(text.replace(b"\n3,", b"\n3\0,", 1))
    refused(tmp_path, directory, "trainLabels.csv", "NUL byte")


def test_a_pixel_csv_that_is_not_utf8_is_one_line_naming_the_line(tmp_path):
    directory = write_demo(tmp_path / "comp", "digits", n_train=60, n_test=12, n_classes=3)
    lines = (directory / "train.csv").read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b",", b",\xe9", 1)
    (directory / "train.csv").write_bytes(b"\n".join(lines))
    refused(tmp_path, directory, "train.csv", "line 5", "not UTF-8")


def test_a_tag_that_would_leave_oof_is_refused(tmp_path):
    from fer_kaggle.cli import main

    for step in (["data", "--demo"], ["folds"]):
        assert main(["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof"), *step]) == 0
    for bad in ("../../evil", "a/b", "<b>x</b>"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-m", "fer_kaggle", "cv", "--preset", "smoke", "--tag", bad],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "--tag" in result.stderr and "is not allowed" in result.stderr, result.stderr
    assert not (tmp_path / "evil").exists() and not list((tmp_path / "oof").glob("*-*"))


# ----------------------------------------------------------------------------- photographs


def save(image, **kw):
    out = io.BytesIO()
    image.save(out, **kw)
    return out.getvalue()


def photographs():
    """{name: (bytes, what a viewer shows as RGB at 16x32 (h, w))}: a left-bright, right-dark
    picture 32 wide and 16 high, stored as cameras and tools write it."""
    shown = np.zeros((16, 32, 3), np.uint8)
    shown[:, :16] = 240
    upright = Image.fromarray(shown)
    turned = upright.transpose(Image.Transpose.ROTATE_90)  # stored a quarter-turn off, EXIF turns it back
    exif = turned.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to show"
    gray16 = (np.asarray(upright.convert("L"), np.uint16) * 257)
    frames = [upright.convert("P"), Image.new("P", (32, 16), 0)]
    out = {
        "exif.jpg": save(turned, format="JPEG", quality=95, exif=exif.tobytes()),
        "cmyk.jpg": save(upright.convert("CMYK"), format="JPEG", quality=95),
        "gray16.png": save(Image.fromarray(gray16), format="PNG"),
        "animated.gif": save(frames[0], format="GIF", save_all=True, append_images=frames[1:]),
        "animated.webp": save(upright, format="WEBP", lossless=True, save_all=True,
                              append_images=[Image.new("RGB", (32, 16))]),
    }
    return out, shown


def test_photographs_are_read_as_a_viewer_shows_them(tmp_path):
    directory = write_demo(tmp_path / "comp", "folders", n_train=30, n_test=6, n_classes=3)
    for p in list((directory / "train").rglob("*.png")) + list((directory / "test").glob("*.png")):
        with Image.open(p) as im:
            im.convert("RGB").resize((32, 16)).save(p)  # every image 32x16, so the photographs keep their size
    files, _ = photographs()
    for name, data in files.items():
        (directory / "test" / f"zz-{name}").write_bytes(data)
        for listing in ("sample_submission.csv", "test_labels.csv"):
            with open(directory / listing, "a") as f:
                f.write(f"zz-{name},apple\n")
    comp = read_competition(directory)
    assert (comp.spec.height, comp.spec.width, comp.spec.channels) == (16, 32, 3)
    for name in files:
        image = comp.x_test[list(comp.test_ids).index(f"zz-{name}")].astype(int)
        left, right = image[:, :14].mean(), image[:, 18:].mean()
        assert left > 200 and right < 40, (name, left, right)  # upright, neither inverted nor clipped to white


def test_predict_reads_the_same_photographs_as_training_did(tmp_path):
    from fer_kaggle.data.images import load_image

    files, _ = photographs()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        image = load_image(tmp_path / name, 16, 32, 3).astype(int)
        assert image[:, :14].mean() > 200 and image[:, 18:].mean() < 40, name
