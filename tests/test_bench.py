"""`make bench`'s measurements run and report sane figures (speed targets are checked by
`make bench` itself, never by timed unit tests)."""

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
