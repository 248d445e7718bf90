"""The pace a variant's next training job plans from: what its jobs that finished measured.

Before its first epoch a job plans its epochs from a step's seconds. The run measures that step
once, before its jobs, in about ten seconds (fer_kaggle.training.measure_step_seconds). A
machine's pace drifts by tens of percent over minutes (a shared host; BENCHMARKS.md, "The first
plan of a fold"): FER2013's cpu hour measured a step that planned 25-26 epochs for every fold,
where the folds' own epochs fitted 16-19. A job that finished timed its epochs over many minutes,
under the load the machine then had, and timed its predictions. So the next job plans from those
of the job of the same variant that finished last, and from the run's measured step only where none
has. Its `done.json` records what it measured (`step_seconds`, `predicted_images`) and what its
first plan came from (`planned_from`)."""

from dataclasses import dataclass

from fer_kaggle import layout

PROBE = "the step measured before the run"


@dataclass
class JobPace:
    step_seconds: float  # one training step
    predict_seconds_per_image: float  # one image and view predicted
    source: str  # what measured them: a finished job of the variant, or PROBE


def planning_pace(variant_dir, step_seconds, batch_size):
    """The pace of the variant's job that finished last: its done.json's `step_seconds` (timed
    over its epochs) and its predictions' seconds per image and view. Where no finished job
    timed them, `step_seconds` (the run's measurement; a forward pass taken as a third of a
    step). None where `step_seconds` is None (no time limit: nothing is planned)."""
    if step_seconds is None:
        return None
    step, per_image, source = step_seconds, step_seconds / batch_size / 3, PROBE
    for folder, done in layout.finished_jobs(variant_dir):  # the last finished last
        if done.get("step_seconds"):
            step, source = float(done["step_seconds"]), folder
        if done.get("predicted_images") and done.get("predict_seconds"):
            per_image = done["predict_seconds"] / done["predicted_images"]
    return JobPace(step, per_image, source)


RESUMED = "an earlier process of this job"


def measured(state, n_predicted, pace, resumed):
    """done.json's record of a job's pace: what it measured (a step's seconds where its epochs
    timed one, the images and views its predictions' seconds were for) and what its first plan
    came from (`pace`'s source, or RESUMED: the plan was made before this process)."""
    return {"step_seconds": round(state.step_seconds, 6) if state.paced_epochs else None,
            "predicted_images": int(n_predicted), "first_planned_epochs": state.first_planned_epochs,
            "planned_from": RESUMED if resumed else None if pace is None else pace.source}

