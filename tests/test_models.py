"""The model registry and zoo: every variant builds from keras.Input, has its size, predicts."""

import numpy as np
import pytest

from fer_kaggle.errors import ConfigError
from fer_kaggle.models import count_flops, create_model, list_models, model_hp
from fer_kaggle.models.dnn import dnn_params

DOCUMENTED_SIZE = {"vgg_ccp": 10.0e6, "conv5x5_4": 3.3e6, "conv5x5_box3": 2.2e6}


@pytest.mark.parametrize("name", list_models())
def test_every_variant_builds_predicts_and_has_its_size(name):
    model = create_model(name, (48, 48, 1), 7)
    assert model.built and model.input_shape == (None, 48, 48, 1)
    probs = np.asarray(model.predict(np.zeros((2, 48, 48, 1), "float32") + 128, verbose=0))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert count_flops(model) > 0
    if name in DOCUMENTED_SIZE:
        assert abs(model.count_params() / DOCUMENTED_SIZE[name] - 1) < 0.1, model.count_params()


def test_registry_errors_and_none_overrides():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create_model("nope", (48, 48, 1), 7)
    with pytest.raises(ConfigError, match="no hyperparameter 'widht'"):
        create_model("resnet_s", (48, 48, 1), 7, widht=3)
    assert model_hp("resnet_s", width=None)["width"] == 16  # None never shadows the variant's value
    assert model_hp("resnet_s", width=8)["width"] == 8
    with pytest.raises(ConfigError, match="normalization"):
        create_model("cnn_tiny", (48, 48, 1), 7, normalization="bogus")


@pytest.mark.parametrize("target", [20_000, 53_447, 330_503, 2_000_000, 10_476_487])
def test_dnn_matches_a_parameter_count_within_one_percent(target):
    model = create_model("dnn_s", (48, 48, 1), 7, target_params=target)
    assert abs(model.count_params() - target) / target < 0.01
    assert dnn_params(2304, [128] * 3, 7) == create_model("dnn_s", (48, 48, 1), 7).count_params()


def test_flops_of_a_known_layer():
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7)(keras.layers.Flatten()(keras.layers.Conv2D(4, 3, padding="same")(inputs)))
    model = keras.Model(inputs, outputs)
    assert count_flops(model) == 2 * 48 * 48 * 9 * 1 * 4 + 2 * 48 * 48 * 4 * 7


def test_vgg_stage_widths_can_be_set_one_by_one():
    import keras

    model = create_model("vgg_fast16", (48, 48, 1), 7, widths=(16, 32, 96, 192))
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [16, 32, 32, 96, 96, 192, 192]  # convs (1, 2, 2, 2), one width per stage
    assert [layer.filters for layer in create_model("vgg_fast16", (48, 48, 1), 7).layers
            if isinstance(layer, keras.layers.Conv2D)] == [16, 32, 32, 64, 64, 128, 128]  # doubling from `width`
    with pytest.raises(ConfigError, match="must name the same stages"):
        create_model("vgg_fast16", (48, 48, 1), 7, widths=(16, 32))
