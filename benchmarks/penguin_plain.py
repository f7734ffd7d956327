"""The penguin work done by hand: the peer of the penguin pipeline's first run.

    python -m benchmarks.penguin_plain OUT_DIR [--train-steps 300]

What a user writes without a pipeline framework, doing what the pipeline's model
path does (examples/penguin): read the palmerpenguins CSV with pyarrow ('NA' is
missing), split it 2:1 into train and eval, the same preprocessing as
``penguin_utils.preprocessing_fn`` done with Keras layers (z-scores from the
training rows with a missing measurement at the mean, island and sex one-hot with
an out-of-vocabulary slot, species as a class id), the same classifier as
``penguin_utils.build_model`` with its default hyperparameters, trained the same
number of steps at batch 32, evaluated on the eval rows, exported as a SavedModel
whose signature takes the raw features. The suite times it as a fresh process
(interpreter start and imports included, as the pipeline's first run), in rounds
paired with that first run. Prints one ``BENCH-RESULT`` JSON line: accuracy, rows,
the SavedModel's path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]}
LABEL = "species"
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
BATCH = 32


def penguins_csv() -> Path:
    """The raw table the palmerpenguins package ships (344 rows), as the example reads it."""
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the penguin peer needs the palmerpenguins package (its data): pip install palmerpenguins")
    return Path(spec.submodule_search_locations[0]) / "data" / "penguins.csv"


def read_split(path: Path):
    """(train, eval) columns as NumPy: numbers float32 with NaN for missing, strings with '' for missing.
    Every third row is eval (the pipeline's ExampleGen splits 2:1 too, by hash)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True))
    columns = {name: pc.cast(table[name], "float32").to_numpy(zero_copy_only=False) for name in NUMERIC}
    columns.update({name: np.asarray(pc.fill_null(table[name], "").to_pylist(), dtype=object)
                    for name in [*CATEGORICAL, LABEL]})
    is_eval = np.arange(table.num_rows) % 3 == 2
    return ({n: v[~is_eval] for n, v in columns.items()}, {n: v[is_eval] for n, v in columns.items()})


def build_model(train: dict):
    """Raw features in, species probabilities out: the preprocessing as Keras layers, then
    ``penguin_utils.build_model``'s layers (2 × Dense(16, relu), softmax; Adam 0.01)."""
    import keras
    import numpy as np

    inputs = {n: keras.Input(shape=(1,), name=n, dtype="float32") for n in NUMERIC}
    inputs.update({n: keras.Input(shape=(1,), name=n, dtype="string") for n in CATEGORICAL})
    columns = []
    for name in NUMERIC:
        present = train[name][~np.isnan(train[name])]
        scaled = keras.layers.Normalization(mean=present.mean(), variance=present.var(), name=f"{name}_z")(inputs[name])
        columns.append(keras.layers.Lambda(lambda x: keras.ops.nan_to_num(x, nan=0.0), name=f"{name}_fill")(scaled))
    for name, vocabulary in CATEGORICAL.items():
        columns.append(keras.layers.StringLookup(vocabulary=vocabulary, output_mode="one_hot", name=f"{name}_one_hot")(inputs[name]))
    hidden = keras.layers.Concatenate()(columns)
    for _ in range(2):
        hidden = keras.layers.Dense(16, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(len(SPECIES), activation="softmax")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train-steps", type=int, default=300)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    train, evaluation = read_split(penguins_csv())
    labels = {split: np.array([SPECIES.index(s) if s in SPECIES else len(SPECIES) for s in rows[LABEL]])
              for split, rows in (("train", train), ("eval", evaluation))}

    def features(rows: dict) -> dict:
        return {n: rows[n].reshape(-1, 1) for n in [*NUMERIC, *CATEGORICAL]}

    model = build_model(train)
    dataset = tf.data.Dataset.from_tensor_slices((features(train), labels["train"])).shuffle(512, seed=0).repeat().batch(BATCH)
    eval_dataset = tf.data.Dataset.from_tensor_slices((features(evaluation), labels["eval"])).batch(BATCH)
    model.fit(dataset, steps_per_epoch=args.train_steps, epochs=1, validation_data=eval_dataset, shuffle=False, verbose=0)
    loss, accuracy = model.evaluate(eval_dataset, verbose=0)
    exported = args.out_dir / "serving_model"
    model.export(str(exported), format="tf_saved_model", verbose=False)
    return {"accuracy": float(accuracy), "loss": float(loss), "train_rows": len(labels["train"]),
            "eval_rows": len(labels["eval"]), "train_steps": args.train_steps, "saved_model": str(exported),
            "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    figures = main()
    print("BENCH-RESULT " + json.dumps(figures), flush=True)
    sys.stderr.flush()
    os._exit(0)  # as benchmarks.workers: TensorFlow may crash in interpreter teardown after the work is done
