"""Per-step learning-rate schedules, evaluated inside the compiled training step."""

import math

import keras
from keras import ops

WARMUP_START = 0.1  # warm-up starts at this fraction of the peak (onecycle: 1/25)


@keras.saving.register_keras_serializable(package="fer_kaggle")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then cosine or linear decay to `floor`
    at `total_steps` (constant: stays at the peak). onecycle: 30% warm-up from peak/25,
    then cosine to the floor."""

    def __init__(self, peak, total_steps, warmup_steps=0, kind="cosine", floor=0.0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)
        self.kind, self.floor = kind, float(floor)

    @classmethod
    def plan(cls, cfg, total_steps):
        kind = cfg["schedule"]
        warmup = 0.3 if kind == "onecycle" else cfg["warmup"]
        return cls(cfg["learning_rate"], total_steps, int(round(warmup * total_steps)), kind, cfg["min_learning_rate"])

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = max(1, self.warmup_steps)
        start = self.peak / 25 if self.kind == "onecycle" else self.peak * WARMUP_START
        warming = start + (self.peak - start) * ops.minimum(step, warm) / warm
        if self.kind == "constant":
            decayed = ops.convert_to_tensor(self.peak, "float32")
        else:
            span = max(1, self.total_steps - self.warmup_steps)
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            if self.kind == "linear":
                shape = 1.0 - progress
            else:
                shape = 0.5 * (1.0 + ops.cos(math.pi * progress))
            decayed = self.floor + (self.peak - self.floor) * shape
        if self.warmup_steps <= 0:
            return decayed
        return ops.where(step < self.warmup_steps, warming, decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "kind": self.kind, "floor": self.floor}
