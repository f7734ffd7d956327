"""The penguin classifier shared by the Trainer and Tuner test modules."""

import keras

FEATURES = ["bill_length_mm_xf", "bill_depth_mm_xf", "flipper_length_mm_xf", "body_mass_g_xf"]
CATEGORICAL = {"island_xf": 3}


def build_model(hyperparameters):
    inputs = {name: keras.Input(shape=(), name=name) for name in FEATURES}
    inputs.update({name: keras.Input(shape=(), name=name, dtype="int64") for name in CATEGORICAL})
    columns = [keras.layers.Reshape((1,))(inputs[n]) for n in FEATURES]
    columns += [keras.layers.CategoryEncoding(size, output_mode="one_hot")(inputs[n]) for n, size in CATEGORICAL.items()]
    stacked = keras.layers.Concatenate()(columns)
    hidden = keras.layers.Dense(int(hyperparameters.get("units", 8)), activation="relu")(stacked)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(float(hyperparameters.get("learning_rate", 0.01))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
