"""K-fold cross-validation over model variants: the run's set-up (configs, cost estimates, the
time limit's shares), and its dispatch of fold jobs serially, in local processes (joblib) or on
a Dask cluster (joblib's dask backend); then each variant's assembly and the leaderboard.

Per variant, under `oof/<variant>/`: `config.json` (fer_kaggle.variant), `fold<k>/`
(fer_kaggle.fold_job), then `oof.npy`, `test.npy` and `metrics.json` committed together
(fer_kaggle.assembly, fer_kaggle.layout); `oof/leaderboard.csv` (fer_kaggle.leaderboard).
"""

import functools
import os
import time
from pathlib import Path

from fer_kaggle import layout
from fer_kaggle.assembly import finalize_variant, trained_folds
from fer_kaggle.errors import ConfigError, PieceEnded
from fer_kaggle.fold_inputs import read_inputs
from fer_kaggle.fold_job import fold_job
from fer_kaggle.leaderboard import write_leaderboard
from fer_kaggle.lock import end_with_parent
from fer_kaggle.probe import is_probe
from fer_kaggle.probe import views as probe_views
from fer_kaggle.progress import Progress, job_line
from fer_kaggle.refit import final_job
from fer_kaggle.time_share import FEW_EPOCHS, LEDGER, TimeShare, affordable_epochs, spent_before
from fer_kaggle.variant import check_or_write_config, variant_config


def run_cv(comp, folds, folds_meta, variants, oof_dir="oof", time_limit=None, jobs=1, scheduler=None,
           threads=None, preset=None, log=None, piece_seconds=None, only_folds=None, final_models=False):
    """Train every variant on every fold (skipping finished folds), assemble, rank.

    `only_folds` (fold numbers) trains those folds only: a one-fold experiment or a holdout
    scheme, assembled as a holdout variant (its OOF predicts the rows of those folds, NaN
    elsewhere) until a run trains its other folds. With `final_models`, each such variant (a
    probe excepted) then trains a final model over every row for its holdout model's epochs
    (fer_kaggle.refit), whose test predictions become the variant's; the time limit is shared
    with it as with another fold job.

    `piece_seconds` ends this call (PieceEnded) when no further epoch fits in that many
    seconds; calling it again resumes, the time limit counting every piece's seconds.
    Returns the leaderboard rows."""
    from fer_kaggle.models import count_flops, model_hp
    from fer_kaggle.training import configure_backend, measure_step_seconds

    oof_dir = Path(oof_dir)
    started = time.perf_counter()  # the limit counts the set-up (cost probes) too
    stop_at = None if piece_seconds is None else time.time() + piece_seconds
    key = {"variants": sorted(v.name for v in variants), "time_limit": time_limit}
    spent = spent_before(oof_dir, key) if time_limit is not None else 0.0
    cores = os.cpu_count() or 1
    threads = threads or max(1, cores // max(1, jobs))
    configure_backend(threads)
    n_folds = int(folds.max()) + 1
    n_fold_train = len(comp.y_train) * (n_folds - 1) // n_folds
    step_seconds, epoch_seconds, costs, pending, finals = {}, {}, {}, [], []
    wants_final = lambda v: final_models and only_folds is not None and not is_probe(v)  # noqa: E731
    for variant in variants:
        variant.model_hp = model_hp(variant.model, **variant.model_hp)
        model = variant.build(comp.spec)
        params, flops = int(model.count_params()), count_flops(model)
        check_or_write_config(oof_dir / variant.name,
                               variant_config(variant, folds_meta, params, flops, preset, comp.test_sha256))
        todo = [k for k in range(n_folds) if not layout.fold_is_done(oof_dir / variant.name, k)
                and (only_folds is None or k in only_folds)]
        pending += [(variant, k) for k in todo]
        if wants_final(variant) and not layout.fold_is_done(oof_dir / variant.name, layout.FINAL):
            finals.append(variant)
        if todo or variant in finals:  # seconds of one fold job at its full epochs, from a short measured fit
            build = lambda v=variant: v.build(comp.spec)  # noqa: E731
            bs = variant.train["batch_size"]
            step = measure_step_seconds(build, variant.train) if time_limit else max(flops, 1) * 3e-9 * bs
            step_seconds[variant.name] = step
            epoch_seconds[variant.name] = step * max(1, n_fold_train // bs)
            for k in todo:
                inputs = read_inputs(layout.fold_dir(oof_dir / variant.name, k))
                rows = n_fold_train if inputs is None else len(inputs.weights)
                costs[(variant.name, k)] = step * max(1, rows // bs) * variant.train["epochs"]
                if is_probe(variant):  # a forward pass (~1/3 step) of every image and view, shared by the folds
                    images = (len(comp.y_train) + len(comp.test_ids)) * probe_views(variant.train, comp.spec)
                    costs[(variant.name, k)] = step * images / bs / 3 / n_folds
            if variant in finals:  # the holdout's epochs over every row
                costs[(variant.name, layout.FINAL)] = step * max(1, len(comp.y_train) // bs) * variant.train["epochs"]
    left = None if time_limit is None else time_limit - spent - (time.perf_counter() - started)
    progress = Progress(sum(costs.values()), left)
    log = log or progress.line
    affordable = affordable_epochs(left, [epoch_seconds[v.name] for v, _ in pending], jobs)
    if affordable is not None and affordable < FEW_EPOCHS:
        log(f"warning: at the pace measured here, {left:.0f}s afford about {affordable:.1f} epochs of each of the "
            f"{len(pending)} fold jobs: expect weak fold models (a longer --time-limit, fewer variants, or a preset "
            f"made for this machine)")
    share = TimeShare(time_limit, costs, oof_dir, jobs, key, time_limit - left) if time_limit is not None else None

    if pending and jobs == 1 and not scheduler:
        trained = False  # in this piece
        for variant, k in pending:
            step, epoch = step_seconds.get(variant.name), epoch_seconds.get(variant.name, 0.0)
            fold_dir = layout.fold_dir(oof_dir / variant.name, k)
            if stop_at is not None and time.time() + epoch > stop_at:
                if not trained:
                    raise ConfigError(f"a piece of {piece_seconds:.0f}s is shorter than one epoch of {variant.name} "
                                      f"(about {epoch:.0f}s) and the set-up: give more --piece-seconds")
                raise PieceEnded(f"{fold_dir}: no further epoch fits in the piece")
            progress.start_job(costs[(variant.name, k)])
            images = variant.images(comp)
            fold_job(variant, k, oof_dir, images.x_train, comp.y_train, images.x_test, folds, images.spec, share,
                     threads, log, step if time_limit else None, stop_at)
            trained = True
            progress.job_done()
    elif pending:
        _run_parallel(pending, step_seconds if time_limit else {}, epoch_seconds, share, comp, folds, oof_dir, jobs,
                      scheduler, threads, stop_at)
    for variant in finals:  # after its holdout model, whose epochs it trains
        if stop_at is not None and time.time() + epoch_seconds[variant.name] * n_folds / (n_folds - 1) > stop_at:
            raise PieceEnded(f"{oof_dir / variant.name}: its final model goes on in the next piece")
        progress.start_job(costs[(variant.name, layout.FINAL)])
        images = variant.images(comp)
        final_job(variant, oof_dir, images.x_train, comp.y_train, images.x_test, images.spec, only_folds, share,
                  threads, log, step_seconds[variant.name] if time_limit else None, stop_at)
        progress.job_done()
    if share:
        (oof_dir / LEDGER).unlink(missing_ok=True)  # every job is done: a later run starts afresh

    for variant in variants:  # every fold asked for is done: all of them, or a holdout's (--folds), and its final model
        done = trained_folds(oof_dir / variant.name, folds)
        final_done = not wants_final(variant) or layout.fold_is_done(oof_dir / variant.name, layout.FINAL)
        if done and set(only_folds if only_folds is not None else range(n_folds)) <= set(done) and final_done:
            finalize_variant(oof_dir / variant.name, comp, folds)
    return write_leaderboard(oof_dir, comp.spec.metric)


FIRST_EPOCH_MARGIN = 30.0  # seconds a fold job's set-up and tracing may add to its first epoch (a GPU compiles)


def _run_parallel(pending, step_seconds, epoch_seconds, share, comp, folds, oof_dir, jobs, scheduler, threads,
                  stop_at=None):
    import joblib

    log = functools.partial(job_line, started=time.time())
    calls = []
    for i, (variant, k) in enumerate(pending):
        images = variant.images(comp)
        piece = None if stop_at is None else (stop_at, i < jobs, epoch_seconds.get(variant.name, 0.0))
        calls.append(joblib.delayed(_piece_job)(variant, k, str(oof_dir), images.x_train, comp.y_train, images.x_test,
                                                folds, images.spec, share, threads, log, step_seconds.get(variant.name),
                                                piece, None if scheduler else os.getpid()))
    if scheduler:
        from dask.distributed import Client

        from fer_kaggle.network import check_dask_address

        with Client(check_dask_address(scheduler)), joblib.parallel_config(backend="dask"):
            results = joblib.Parallel(n_jobs=jobs)(calls)
    else:
        results = joblib.Parallel(n_jobs=jobs, backend="loky")(calls)
    unfinished = [f"{variant.name} fold {k}" for (variant, k), done in zip(pending, results) if done is None]
    if unfinished:
        raise PieceEnded(f"{len(unfinished)} fold jobs go on in the next piece ({', '.join(unfinished)})")


def _piece_job(variant, k, oof_dir, x, y, x_test, folds, spec, share, threads, log, step_seconds, piece,
               parent_pid=None):
    """One parallel fold job: its done record, or None where the piece ended first. `piece`:
    (its end as a `time.time()`, whether the job starts in any case (the piece's first jobs,
    so that every piece makes progress), the job's epoch seconds); a later job is not started
    when its first epoch would not end in the piece. A job returns rather than raises, so
    that the piece's end never cuts the jobs beside it short: each checkpoints its own. A
    local worker ends with `parent_pid`, the run's process."""
    stop_at = None
    if piece is not None:
        stop_at, must_start, epoch_seconds = piece
        if not must_start and time.time() + epoch_seconds + FIRST_EPOCH_MARGIN > stop_at:
            return None
    end_with_parent(parent_pid)
    try:
        return fold_job(variant, k, oof_dir, x, y, x_test, folds, spec, share, threads, log, step_seconds, stop_at)
    except PieceEnded:
        return None
