"""`make bench`'s measurements run and report sane figures (speed targets are checked by
`make bench` itself, never by timed unit tests)."""

from fer_kaggle import training
from fer_kaggle.bench import blending, memory
from fer_kaggle.bench import training as bench_training
from fer_kaggle.ensemble import BLENDERS


def build():
    from fer_kaggle.models import create_model

    return create_model("cnn_tiny", (48, 48, 1), 7, filters=(4, 8))


def test_training_and_prediction_rates():
    cfg = training.resolve_config(batch_size=32)
    assert bench_training.plain_fit_images_per_second(build, 32, 3) > 0
    assert bench_training.toolkit_images_per_second(build, cfg, 3) > 0
    rates = bench_training.prediction_images_per_second(build, n=256)
    assert set(rates) == set(training.TTA_VIEWS) and min(rates.values()) > 0


def test_blend_seconds_of_synthetic_members():
    seconds, method = blending.blend_seconds(3, 400, 7, "accuracy")
    assert seconds > 0 and method in BLENDERS


def test_fold_job_memory_is_measured(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    rss = memory.fold_job_peak_rss_bytes(tmp / "data", "smoke", "cnn_tiny")
    assert 50 * 2**20 < rss < 6 * 2**30
