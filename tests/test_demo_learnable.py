"""The demo competition is learnable by a small CNN, and harder for a DNN."""

import numpy as np

from fer_kaggle.data.demo import generate


def fit_and_score(model, x, y, xv, yv, epochs):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model.evaluate(xv, yv, verbose=0)[1]


def test_small_cnn_learns_the_demo_well_above_chance_and_beats_a_dnn():
    import keras

    keras.utils.set_random_seed(0)
    x, y = generate(2400, seed=11)
    x = x[..., None].astype("float32")
    x = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / (x.std(axis=(1, 2, 3), keepdims=True) + 1e-3)
    xt, yt, xv, yv = x[:1900], y[:1900], x[1900:], y[1900:]
    majority = np.bincount(yv).max() / len(yv)

    layers = keras.layers

    def block(filters):
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                layers.ReLU(), layers.MaxPooling2D()]

    cnn = keras.Sequential([keras.Input((48, 48, 1)), *block(16), *block(32), *block(64), layers.Flatten(),
                            layers.Dropout(0.3), layers.Dense(7, activation="softmax")])
    dnn = keras.Sequential([
        keras.Input((48, 48, 1)), keras.layers.Flatten(),
        keras.layers.Dense(24, activation="relu"), keras.layers.Dense(7, activation="softmax"),
    ])
    cnn_acc = fit_and_score(cnn, xt, yt, xv, yv, epochs=10)
    dnn_acc = fit_and_score(dnn, xt, yt, xv, yv, epochs=10)
    print(f"majority {majority:.3f} cnn {cnn_acc:.3f} dnn {dnn_acc:.3f}")
    assert cnn_acc > majority + 0.3
    assert cnn_acc > dnn_acc + 0.1
