"""The model registry: named variants of plain builder functions.

A builder is `(input_shape, num_classes, **hp) -> keras.Model`, starting from `keras.Input`
so the model is built and its size known. `register_model(name, **hp)` registers a
variant: the builder with those hyperparameters. Stack the decorator for several widths.
"""

import inspect

from fer_kaggle.errors import ConfigError

_VARIANTS = {}


def register_model(name, **hp):
    def decorate(builder):
        if name in _VARIANTS:
            raise ConfigError(f"model {name!r} is registered twice")
        _check_hp(name, builder, hp)
        _VARIANTS[name] = (builder, dict(hp))
        return builder

    return decorate


def list_models():
    return sorted(_VARIANTS)


def model_hp(name, **overrides):
    """The resolved hyperparameters of a variant: builder defaults, variant values, overrides.

    `None` overrides are dropped, so CLI defaults never shadow a builder's own."""
    builder, hp = _lookup(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    _check_hp(name, builder, overrides)
    defaults = {
        k: p.default
        for k, p in inspect.signature(builder).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, **hp, **overrides}


def create_model(name, input_shape, num_classes, **overrides):
    """The variant `name` for images of `input_shape` (height, width, channels) and
    `num_classes` classes (the competition spec's): no default, so a stage that forgets to
    pass them fails at once."""
    builder, _ = _lookup(name)
    hp = model_hp(name, **overrides)
    try:
        return builder(tuple(input_shape), num_classes, **hp)
    except (ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"model {name!r} cannot take {tuple(input_shape)} images ({num_classes} classes) with "
                          f"{hp}: {first[:200]}") from None


def builder_of(name):
    return _lookup(name)[0]


def _lookup(name):
    if name not in _VARIANTS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _VARIANTS[name]


def _check_hp(name, builder, hp):
    params = inspect.signature(builder).parameters
    accepted = [k for k in params if k not in ("input_shape", "num_classes")]
    for key in hp:
        if key not in accepted:
            raise ConfigError(f"model {name!r} has no hyperparameter {key!r}; it takes: {', '.join(accepted)}")
