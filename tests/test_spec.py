"""The competition spec: inference, overrides, identity, and that stages take it, not constants."""

import numpy as np
import pytest

from fer_kaggle.data import read_competition, store
from fer_kaggle.data.synthetic import write_demo
from fer_kaggle.errors import ConfigError, FoldsError
from fer_kaggle.spec import Spec


def test_the_spec_round_trips_and_checks_itself(tmp_path):
    from fer_kaggle.spec import read_spec

    spec = Spec(height=32, width=32, channels=3, labels=("cat", "dog"), label_kind="name", metric="roc_auc",
                submission="positive", submission_columns=("id", "dog"), label_column="dog", guessed=("flip",))
    (tmp_path / "s.json").write_text(__import__("json").dumps(spec.to_json()))
    assert read_spec(tmp_path / "s.json") == spec and spec.num_classes == 2 and spec.input_shape == (32, 32, 3)
    with pytest.raises(ConfigError, match="metric 'f2'"):
        spec.replace(metric="f2")
    with pytest.raises(ConfigError, match="submission 'positive' with 3 classes"):
        Spec(height=32, width=32, channels=3, labels=("a", "b", "c"), submission="positive")
    assert spec.replace(metric="accuracy").identity_sha256 == spec.identity_sha256  # the metric changes no array
    assert spec.replace(flip=False).identity_sha256 != spec.identity_sha256


def test_what_nothing_settled_is_marked_guessed_and_overrides_win(tmp_path):
    directory = write_demo(tmp_path / "c", "images", n_train=60, n_test=12, n_classes=3)
    (directory / "trainLabels.csv").rename(directory / "labels.csv")  # no longer CIFAR-10's file names
    (directory / "sampleSubmission.csv").rename(directory / "sample_submission.csv")
    comp = read_competition(directory)
    assert comp.spec.competition == "" and set(comp.spec.guessed) == {"metric", "flip"}
    assert any("guessed: metric, flip" in line for line in comp.spec.summary_lines())
    over = read_competition(directory, {"metric": "macro_f1", "flip": False, "image_size": [16, 16]})
    assert over.spec.metric == "macro_f1" and not over.spec.flip and over.spec.guessed == ()
    assert over.x_train.shape == (60, 16, 16, 3)


def test_the_spec_in_use_persists_and_a_spec_change_refuses_old_folds(tmp_path):
    from fer_kaggle.data import load_folds, write_folds

    directory = write_demo(tmp_path / "c", "digits", n_train=60, n_test=12, n_classes=3)
    comp, _ = store.prepare(tmp_path / "data", source=directory)
    write_folds(tmp_path / "oof", comp.y_train, comp.identity, k=3)
    assert store.load(tmp_path / "data").spec == comp.spec
    assert (tmp_path / "data" / "spec.json").exists()
    changed, _ = store.prepare(tmp_path / "data", source=directory, overrides={"flip": True})
    assert store.load(tmp_path / "data").spec.flip  # the override is remembered
    with pytest.raises(FoldsError, match="another competition spec"):
        load_folds(tmp_path / "oof", changed.identity, len(changed.y_train))
    metric_only, _ = store.prepare(tmp_path / "data", source=directory, overrides={"flip": True, "metric": "qwk"})
    assert metric_only.spec.metric == "qwk" and metric_only.identity == changed.identity  # no retraining for a metric


def test_no_model_builds_without_the_specs_shape():
    from fer_kaggle.models import create_model

    with pytest.raises(TypeError):
        create_model("cnn_tiny")  # no default shape or class count smuggles FER2013 back in


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (48, 48, 1), (96, 96, 3), (20, 36, 3)])
def test_every_model_takes_each_shape_or_says_why_not(shape):
    from fer_kaggle.models import create_model, list_models

    for name in list_models():
        try:
            model = create_model(name, shape, 10)
        except ConfigError as e:
            assert name in str(e) and str(shape) in str(e)
            continue
        assert model.input_shape[1:] == shape and model.output_shape[-1] == 10, name


def test_large_images_get_a_strided_stem_so_the_cost_follows_the_size():
    from fer_kaggle.models import count_flops, create_model

    small = count_flops(create_model("vgg_fast16", (64, 64, 3), 5))
    large = count_flops(create_model("vgg_fast16", (256, 256, 3), 5))
    assert large < 3 * small  # without a stem, 16 times the pixels would cost about 16 times the FLOPs


def test_presets_follow_the_specs_symmetries():
    from fer_kaggle import presets

    faces = Spec(height=48, width=48, channels=1, labels=tuple("0123456"))
    digits = faces.replace(flip=False)
    cpu_faces = presets.resolve("cpu", spec=faces)[0].train
    cpu_digits = presets.resolve("cpu", spec=digits)[0].train
    assert cpu_faces["flip"] and cpu_faces["tta"] == "flip+crops"
    assert not cpu_digits["flip"] and cpu_digits["tta"] == "crops"
    forced = presets.resolve("cpu", settings={"flip": "true"}, spec=digits)[0].train
    assert forced["flip"]


def test_tta_views_follow_the_image_and_shift_by_a_fraction_of_its_side():
    from fer_kaggle.training.tta import TTA_VIEWS, predict

    class Recorder:
        output_shape = (None, 2)

        def __init__(self):
            self.views = []

        def predict(self, x, batch_size, verbose):
            self.views.append(x.copy())
            return np.full((len(x), 2), 0.5)

    x = np.arange(2 * 24 * 24 * 3, dtype=np.uint8).reshape(2, 24, 24, 3)
    for tta, n in TTA_VIEWS.items():
        model = Recorder()
        predict(model, x, tta=tta)
        assert len(model.views) == n and all(v.shape == x.shape for v in model.views)
    model = Recorder()
    predict(model, x, tta="crops")
    assert not any(np.array_equal(v, x[:, :, ::-1]) for v in model.views)  # no mirror without flips
    assert np.array_equal(model.views[1][:, 1:, 1:], x[:, :-1, :-1])  # a 1-pixel shift at 24 pixels
