"""`make bench`'s measurements run and report sane figures (speed targets are checked by
`make bench` itself, never by timed unit tests)."""

import numpy as np

from fer_kaggle import training
from fer_kaggle.bench import blending, memory
from fer_kaggle.bench import training as bench_training


def build():
    from fer_kaggle.models import create_model

    return create_model("cnn_tiny", (48, 48, 1), 7, filters=(4, 8))


class Clock:
    """perf_counter reading the given times in turn: what each measurement should report is
    then known without timing anything."""

    def __init__(self, *times):
        self.times = list(times)

    def perf_counter(self):
        return self.times.pop(0)


def test_the_plain_fit_rate_is_its_images_over_the_faster_timed_epoch(monkeypatch):
    monkeypatch.setattr(bench_training, "time", Clock(0.0, 4.0, 10.0, 12.0))  # timed epochs of 4 s and 2 s
    assert bench_training.plain_fit_images_per_second(build, 32, 3) == 32 * 3 / 2.0


def test_the_toolkit_rate_leaves_out_the_epoch_that_traced(monkeypatch):
    from types import SimpleNamespace

    history = [{"seconds": 0.5}, {"seconds": 3.0}, {"seconds": 1.5}]  # the first traced: never the pace
    monkeypatch.setattr(training, "fit", lambda *a, **k: (None, SimpleNamespace(history=history)))
    cfg = training.resolve_config(batch_size=32)
    assert bench_training.toolkit_images_per_second(build, cfg, 3) == 32 * 3 / 1.5


def test_prediction_rates_count_images_once_whatever_the_views(monkeypatch):
    views = list(training.TTA_VIEWS)
    times = [t for i in range(len(views)) for t in (10.0 * i, 10.0 * i + i + 1)]  # tta i takes i + 1 seconds
    monkeypatch.setattr(bench_training, "time", Clock(*times))
    rates = bench_training.prediction_images_per_second(build, n=256)
    assert rates == {tta: 256 / (i + 1) for i, tta in enumerate(views)}


def test_blend_seconds_time_the_search_that_chooses_the_method(monkeypatch):
    from fer_kaggle.ensemble import BestBlend

    monkeypatch.setattr(blending, "time", Clock(100.0, 107.5))
    seconds, method = blending.blend_seconds(3, 400, 7, "accuracy")
    members, y, folds = blending.synthetic_members(3, 400, 7)
    assert seconds == 7.5 and method == BestBlend(folds, "accuracy").fit(members, y).method_


def test_fold_job_memory_is_measured(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    rss = memory.fold_job_peak_rss_bytes(tmp / "data", "smoke", "cnn_tiny")
    assert 50 * 2**20 < rss < 6 * 2**30


def test_the_combiner_benchmark_s_oof_never_depends_on_a_row_s_own_label():
    """The clean combiner's inputs: each fold's predictions come from members that never saw its
    labels (changing them changes nothing there), and the optimism is reported per fold."""
    from fer_kaggle.bench.stacking import combiner_optimism, oof_of, quick_members

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 6)), rng.integers(0, 3, 120)
    x[:, 0] += y  # learnable
    folds = np.arange(120) % 4
    changed = y.copy()
    changed[folds == 2] = (changed[folds == 2] + 1) % 3
    before, after = oof_of(quick_members(0), x, y, folds, 3), oof_of(quick_members(0), x, changed, folds, 3)
    for b, a in zip(before, after):
        assert np.array_equal(b[folds == 2], a[folds == 2]) and not np.array_equal(b, a)
    images = rng.integers(0, 256, (120, 8, 8, 1)).astype(np.uint8)
    images[:, :4] = (y * 80)[:, None, None, None]
    result = combiner_optimism(images, y, 3, methods=("stack",), k=3, inner_k=2, seeds=(0,))
    assert result["stack"]["differences"].shape == (3, 2) and result["stack"]["clean"][0] > 0.6
