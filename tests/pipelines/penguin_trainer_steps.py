"""The penguin pipeline up to the Trainer (5 steps), for the tests that kill a run during training.

PENGUIN_DATA names the input. Faults, steered by the environment: TRAINER_MARKER and
TRAINER_SLEEP (penguin_trainer_module.py: the Trainer pauses after training, the
moment to kill the run), CRASH_IN_UPLOAD=1 (the process kills itself with SIGKILL
once the first file of the Trainer's SavedModel has reached the store: a crash in
the middle of writing the model).
"""

import importlib.util
import os
import signal

from beam_ml import Pipeline, local_copies
from beam_ml.components.trainer import Trainer
from beam_ml.components.transform import Transform

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXAMPLE = os.path.join(_HERE, "..", "..", "examples", "penguin", "pipeline.py")
_spec = importlib.util.spec_from_file_location(
    "penguin_example_pipeline", os.path.abspath(_EXAMPLE)
)
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)

if os.environ.get("CRASH_IN_UPLOAD") == "1":
    _upload = local_copies.upload

    def _upload_first_file_then_die(local_dir: str, uri: str) -> None:
        if "/Trainer/" in uri and os.path.isfile(os.path.join(local_dir, "saved_model.pb")):
            from apache_beam.io.filesystems import FileSystems

            from beam_ml import fs

            source, target = (
                os.path.join(local_dir, "saved_model.pb"),
                fs.join(uri, "saved_model.pb"),
            )
            with open(source, "rb") as reader, FileSystems.create(target) as writer:
                writer.write(reader.read())
            os.kill(os.getpid(), signal.SIGKILL)
        _upload(local_dir, uri)

    local_copies.upload = _upload_first_file_then_die

example_gen, statistics_gen, schema_gen, _validator = _example._data_stages(
    os.environ.get("PENGUIN_DATA") or None
)
transform = Transform(
    examples=example_gen.outputs.examples,
    schema=schema_gen.outputs.schema,
    module_file=_example.MODULE,
)
trainer = Trainer(
    examples=transform.outputs.transformed_examples,
    transform_graph=transform.outputs.transform_graph,
    module_file=os.path.join(_HERE, "penguin_trainer_module.py"),
    train_steps=5,
    eval_steps=None,
    label_key="species_xf",
)
pipeline = Pipeline(
    "penguin_trainer",
    root="unused-root",
    components=[example_gen, statistics_gen, schema_gen, transform, trainer],
)
