"""What a Trainer user module gets and uses: ``FnArgs``, Parquet → ``tf.data``, and export.

A module defines ``run_fn(fn_args: FnArgs)`` (TFX's convention), builds a Keras
model, fits it on ``fn_args.train_dataset(...)`` and exports it with
``export_serving_model``::

    def run_fn(fn_args):
        model = build_model(fn_args.hyperparameters)
        model.fit(fn_args.train_dataset(batch_size=32), steps_per_epoch=fn_args.train_steps,
                  validation_data=fn_args.eval_dataset(batch_size=32), validation_steps=fn_args.eval_steps)
        export_serving_model(model, fn_args.tf_transform_output, fn_args.serving_model_dir,
                             label_key=fn_args.label_key)

The exported SavedModel has two signatures, both fed serialized ``tf.Example``
protos of RAW (untransformed) rows, as TFX's Trainer exports them (TF Serving,
TFMA and TFX's BulkInferrer call them this way):

- ``serving_default(examples)``: the model's outputs; the tf.Transform graph
  is inside, so callers do no preprocessing. The label may be absent.
- ``transform_features(examples)``: the transformed features.

``serialize_examples(batch, schema)`` turns raw Parquet/Arrow rows (nulls
included) into those protos with tfx_bsl's C++ encoder.

TensorFlow is imported when a function here is called, not when the module is.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from beam_ml.artifacts import Model, serving_uri

if TYPE_CHECKING:
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_metadata.proto.v0 import schema_pb2

__all__ = [
    "OUTPUT_KIND_FILE",
    "SERVING_DIR",
    "DataAccessor",
    "FnArgs",
    "build_fn_args",
    "detect_output_kind",
    "export_serving_model",
    "load_serving_model",
    "parquet_dataset",
    "read_output_kind",
    "saved_output_kind",
    "serialize_examples",
    "serving_path",
    "warm_start",
]

#: Where the SavedModel lives inside a Model artifact (TFX's layout; ``beam_ml.artifacts.Model``).
SERVING_DIR = Model.SERVING_DIR
#: Inside the SavedModel: "probabilities" or "logits", when the export could tell (Evaluator reads it).
OUTPUT_KIND_FILE = "assets.extra/beam_ml_output_kind.txt"


@dataclass(frozen=True)
class FnArgs:
    """Everything ``run_fn`` needs; built by the Trainer component.

    Datasets read the Parquet files of ``train_files``/``eval_files`` under
    ``feature_spec`` (the transformed feature spec when there is a transform
    graph, else the raw one from ``schema``), streaming record batches.
    """

    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    serving_model_dir: str
    #: TensorBoard logs go here (the ModelRun artifact).
    model_run_dir: str
    #: The tf.Transform output directory (TransformGraph artifact), if any.
    transform_output: str | None = None
    schema: schema_pb2.Schema | None = None
    #: TFX's form: keras-tuner's config (``HyperParameters.from_config`` reads it) when a
    #: Tuner chose the values, else the ``{name: value}`` dict, or None when there are none.
    hyperparameters: Mapping[str, Any] | None = None
    #: Always the ``{name: value}`` dict (the Tuner's best values merged over the Trainer's).
    hyperparameter_values: Mapping[str, Any] = field(default_factory=dict)
    train_steps: int | None = None
    eval_steps: int | None = None
    label_key: str | None = None
    #: None when unset, as in TFX.
    custom_config: Mapping[str, Any] | None = None
    #: Scratch space of the run (the Tuner's trials; the Trainer's ``model_run_dir``).
    working_dir: str | None = None
    #: The ``schema.pbtxt`` of the Schema input, if any.
    schema_path: str | None = None
    #: TFX's ``fn_args.base_model``: a local path to the SavedModel directory of the Trainer's
    #: ``base_model`` input (e.g. the latest blessed model), to warm start from; None without one.
    base_model: str | None = None

    @property
    def transform_graph_path(self) -> str | None:
        """TFX's name for ``transform_output``."""
        return self.transform_output

    @property
    def schema_file(self) -> str | None:
        """TFX's other name for ``schema_path``."""
        return self.schema_path

    @functools.cached_property
    def data_accessor(self) -> DataAccessor:
        """TFX's ``fn_args.data_accessor``: ``tf_dataset_factory(files, options, schema)``."""
        return DataAccessor(self.feature_spec)

    @functools.cached_property
    def tf_transform_output(self) -> tft.TFTransformOutput | None:
        if self.transform_output is None:
            return None
        import tensorflow_transform as tft

        return tft.TFTransformOutput(self.transform_output)

    @property
    def log_dir(self) -> str:
        return self.model_run_dir

    @property
    def raw_feature_spec(self) -> dict[str, Any]:
        if self.tf_transform_output is not None:
            return dict(self.tf_transform_output.raw_feature_spec())
        if self.schema is None:
            raise ValueError("FnArgs has neither a transform output nor a schema: no feature spec")
        from tensorflow_transform.tf_metadata import schema_utils

        return dict(schema_utils.schema_as_feature_spec(self.schema).feature_spec)

    @property
    def feature_spec(self) -> dict[str, Any]:
        """The spec of the examples the datasets read (transformed if there is a transform)."""
        if self.tf_transform_output is not None:
            return dict(self.tf_transform_output.transformed_feature_spec())
        return self.raw_feature_spec

    def train_dataset(
        self, batch_size: int = 32, *, shuffle: bool = True, num_epochs: int | None = None, seed: int | None = None
    ) -> tf.data.Dataset:
        """Training batches, repeated forever by default (bound them with ``train_steps``)."""
        return parquet_dataset(self.train_files, self.feature_spec, batch_size, label_key=self.label_key,
                               shuffle=shuffle, num_epochs=num_epochs, seed=seed)

    def eval_dataset(
        self, batch_size: int = 32, *, shuffle: bool = False, num_epochs: int | None = 1
    ) -> tf.data.Dataset:
        """Evaluation batches, one pass by default."""
        return parquet_dataset(self.eval_files, self.feature_spec, batch_size, label_key=self.label_key,
                               shuffle=shuffle, num_epochs=num_epochs)


class DataAccessor:
    """TFX's ``DataAccessor`` over beam-ml's Parquet examples.

    ``tf_dataset_factory(file_pattern, options, schema)`` takes what TFX's does:
    the file list (e.g. ``fn_args.train_files``; globs are expanded), tfx_bsl's
    ``tfxio.TensorFlowDatasetOptions`` and the schema of the examples (e.g.
    ``tf_transform_output.transformed_metadata.schema``; None means the feature
    spec of ``fn_args``), and returns ``parquet_dataset``'s batches: ``(features,
    label)`` with ``options.label_key``. ``batch_size``, ``shuffle``,
    ``shuffle_seed`` and ``num_epochs`` (None repeats forever, TFX's default) are
    honoured; buffer sizes and thread counts are tuning knobs of TFXIO's reader
    with no counterpart here. A batch never spans two files.
    """

    def __init__(self, default_feature_spec: Mapping[str, Any]) -> None:
        self._default_feature_spec = dict(default_feature_spec)

    def tf_dataset_factory(
        self,
        file_pattern: Sequence[str] | str,
        options: Any,
        schema: schema_pb2.Schema | None = None,
    ) -> tf.data.Dataset:
        if getattr(options, "drop_final_batch", False):
            raise ValueError("TensorFlowDatasetOptions(drop_final_batch=True) is not supported by beam-ml's "
                             "Parquet reader; leave it False")
        patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
        files = _expand(patterns)
        if schema is None:
            feature_spec = self._default_feature_spec
        else:
            from tensorflow_transform.tf_metadata import schema_utils

            feature_spec = dict(schema_utils.schema_as_feature_spec(schema).feature_spec)
        return parquet_dataset(files, feature_spec, int(options.batch_size), label_key=options.label_key,
                               shuffle=bool(options.shuffle), num_epochs=options.num_epochs,
                               seed=options.shuffle_seed)


def _expand(patterns: Sequence[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        if not any(char in pattern for char in "*?["):
            files.append(pattern)
            continue
        from apache_beam.io.filesystems import FileSystems

        matched = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        if not matched:
            raise ValueError(f"no files match {pattern!r}")
        files.extend(matched)
    return files


def build_fn_args(
    component: str,
    examples: Any,
    transform_graph: Any | None,
    schema: Any | None,
    *,
    train_split: str,
    eval_split: str,
    serving_model_dir: str,
    model_run_dir: str,
    **settings: Any,
) -> FnArgs:
    """The ``FnArgs`` Trainer and Tuner hand their user module, after checking what they were given.

    ``settings`` are the remaining FnArgs fields (hyperparameters, steps, label_key, custom_config,
    working_dir: ``model_run_dir`` unless given).
    """
    from beam_ml.local_copies import local_copy

    for split in (train_split, eval_split):
        if split not in examples.splits:
            raise ValueError(f"split {split!r} is not among the examples' splits {examples.splits}")
    if transform_graph is None and schema is None:
        raise ValueError(f"{component} needs a transform_graph or a schema to know the features")
    return FnArgs(
        train_files=examples.files(train_split),
        eval_files=examples.files(eval_split),
        serving_model_dir=serving_model_dir,
        model_run_dir=model_run_dir,
        transform_output=local_copy(transform_graph.uri) if transform_graph is not None else None,
        schema=schema.load() if schema is not None else None,
        schema_path=schema.schema_uri if schema is not None else None,
        **{"working_dir": model_run_dir, **settings},
    )


# ------------------------------------------------------------------ Parquet → tf.data


def _open(path: str):
    from beam_ml import fs

    if fs.is_local(path):
        return path.removeprefix("file://")
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path)


def _values(column: pa.Array, numpy_dtype: Any) -> np.ndarray:
    if numpy_dtype is object:
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False).astype(numpy_dtype, copy=False)


def _fixed_len(name: str, column: pa.Array, spec: Any, numpy_dtype: Any) -> np.ndarray:
    shape = [int(d) for d in spec.shape]
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        size = int(np.prod(shape)) if shape else 1
        if column.null_count or not np.all(lengths == size):
            raise ValueError(f"feature {name!r}: every row must have {size} values for shape {shape}")
        return _values(pc.list_flatten(column), numpy_dtype).reshape([-1, *shape])
    if column.null_count:
        if spec.default_value is None:
            raise ValueError(f"feature {name!r} has missing values and its FixedLenFeature no default")
        default = np.asarray(spec.default_value).reshape(-1)[0]
        column = pc.fill_null(column, pa.scalar(default.item() if hasattr(default, "item") else default, column.type))
    if shape not in ([], [1]):
        raise ValueError(f"feature {name!r}: a flat column cannot have shape {shape}")
    return _values(column, numpy_dtype).reshape([-1, *shape])


def _var_len(column: pa.Array, numpy_dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        column = column.fill_null([]) if column.null_count else column
        offsets = column.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]
        return _values(pc.list_flatten(column), numpy_dtype), offsets
    lengths = column.is_valid().to_numpy(zero_copy_only=False).astype(np.int64)
    return _values(pc.drop_null(column), numpy_dtype), np.concatenate([[0], np.cumsum(lengths)])


def parquet_dataset(
    files: Sequence[str],
    feature_spec: Mapping[str, Any],
    batch_size: int,
    *,
    label_key: str | None = None,
    shuffle: bool = False,
    num_epochs: int | None = 1,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of ``feature_spec``'s features from Parquet files, streamed record batch by record batch.

    ``FixedLenFeature``s become dense ``[batch, *shape]`` tensors (nulls take the
    spec's default), ``VarLenFeature``s ``SparseTensor``s (a null is no value),
    as ``tf.io.parse_example`` would give them. With ``label_key`` the elements
    are ``(features, label)``. ``shuffle`` reorders files each epoch and rows
    within each batch; ``num_epochs=None`` repeats forever.
    """
    import tensorflow as tf

    if not files:
        raise ValueError("no Parquet files to read")
    specs = dict(feature_spec)
    columns = sorted(specs)
    numpy_dtypes = {name: object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
                    for name, spec in specs.items()}
    varlen = {name for name, spec in specs.items() if isinstance(spec, tf.io.VarLenFeature)}
    unsupported = [name for name, spec in specs.items()
                   if not isinstance(spec, tf.io.VarLenFeature | tf.io.FixedLenFeature)]
    if unsupported:
        raise ValueError(f"only FixedLenFeature and VarLenFeature can be read from Parquet: {unsupported}")
    signature = {}
    for name, spec in specs.items():
        if name in varlen:
            signature[name] = (tf.TensorSpec([None], spec.dtype), tf.TensorSpec([None], tf.int64))
        else:
            signature[name] = tf.TensorSpec([None, *spec.shape], spec.dtype)
    rng = np.random.default_rng(seed)
    ordered = list(files)

    def generate() -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        order = rng.permutation(len(ordered)) if shuffle else range(len(ordered))
        for index in order:
            reader = pq.ParquetFile(_open(ordered[index]))
            for batch in reader.iter_batches(batch_size=batch_size, columns=columns):
                if shuffle:
                    batch = batch.take(pa.array(rng.permutation(batch.num_rows)))
                element = {}
                for name in columns:
                    column = batch.column(name)
                    if name in varlen:
                        element[name] = _var_len(column, numpy_dtypes[name])
                    else:
                        element[name] = _fixed_len(name, column, specs[name], numpy_dtypes[name])
                yield element

    def to_tensors(element: dict[str, Any]) -> Any:
        features = {}
        for name, value in element.items():
            if name in varlen:
                values, row_splits = value
                features[name] = tf.RaggedTensor.from_row_splits(values, row_splits).to_sparse()
            else:
                features[name] = value
        if label_key is None:
            return features
        label = features.pop(label_key)
        return features, label

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.map(to_tensors, num_parallel_calls=tf.data.AUTOTUNE)
    if num_epochs != 1:
        dataset = dataset.repeat(num_epochs)
    if num_epochs is not None:
        # A generator's length is unknown to tf.data; Keras then learns it by running
        # out, and warns "Your input ran out of data" at the end of every evaluation.
        import pyarrow.parquet as pq

        batches = sum(-(-pq.ParquetFile(_open(path)).metadata.num_rows // batch_size) for path in ordered)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches * num_epochs))
    return dataset.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- export


def _model_input_names(model: Any) -> list[str] | None:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return None
    names = []
    for tensor in inputs:
        name = getattr(tensor, "name", None)
        if not name:
            return None
        names.append(name.split(":")[0])
    return names


def _as_output_dict(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return dict(outputs)
    if isinstance(outputs, list | tuple):
        return {f"output_{i}": value for i, value in enumerate(outputs)}
    return {"outputs": outputs}


def detect_output_kind(model: Any) -> str | None:
    """"probabilities" or "logits" from a single-output Keras model's last layer; None if it cannot tell.

    A final softmax/sigmoid activation (or Softmax layer) gives probabilities, a
    linear one logits (TFX's penguin model ends so).
    """
    layers = getattr(model, "layers", None)
    outputs = getattr(model, "outputs", None)
    if not layers or outputs is None or len(outputs) != 1:
        return None
    last = layers[-1]
    if type(last).__name__ == "Softmax":
        return "probabilities"
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if activation in ("softmax", "sigmoid"):
        return "probabilities"
    if activation == "linear":
        return "logits"
    return None


def read_output_kind(serving_dir: str) -> str | None:
    """What ``export_serving_model`` recorded of the model's output kind, or None."""
    from beam_ml import fs

    path = fs.join(serving_dir, OUTPUT_KIND_FILE)
    if not fs.exists(path):
        return None
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as handle:
        return handle.read().decode("utf-8").strip() or None


#: Ops a signature's output passes through unchanged in kind (looking back from the output).
_PASS_THROUGH_OPS = frozenset({"Identity", "IdentityN", "Squeeze", "Reshape", "ExpandDims", "StopGradient", "Cast"})
_PROBABILITY_OPS = frozenset({"Softmax", "Sigmoid"})
_LOGIT_OPS = frozenset({"BiasAdd", "MatMul", "BatchMatMulV2", "Add", "AddV2"})


def saved_output_kind(serving_dir: str, signature_name: str = "serving_default") -> str | None:
    """"probabilities" or "logits" from a SavedModel's graph, for a single-output signature; None if it cannot tell.

    For models a ``run_fn`` saved itself (TFX module files call ``model.save`` or
    ``tf.saved_model.save`` with their own serving function), so no export
    helper recorded the kind. Reads ``saved_model.pb`` only (no variables are
    restored) and follows the output back through identities, reshapes and
    function calls to the op that computes it: Softmax/Sigmoid → probabilities;
    a dense layer's BiasAdd/MatMul/Add → logits.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    from beam_ml import fs

    path = fs.join(serving_dir, "saved_model.pb")
    if not fs.exists(path):
        return None
    saved = saved_model_pb2.SavedModel()
    with fs.open_read(path) as handle:
        saved.ParseFromString(handle.read())
    for meta_graph in saved.meta_graphs:
        signature = meta_graph.signature_def.get(signature_name)
        if signature is None or len(signature.outputs) != 1:
            continue
        library = {function.signature.name: function for function in meta_graph.graph_def.library.function}
        nodes = {node.name: node for node in meta_graph.graph_def.node}
        tensor = next(iter(signature.outputs.values())).name
        op = _producing_op(nodes, tensor, library)
        if op in _PROBABILITY_OPS:
            return "probabilities"
        if op in _LOGIT_OPS:
            return "logits"
    return None


def _producing_op(nodes: Mapping[str, Any], tensor: str, library: Mapping[str, Any]) -> str | None:
    """The type of the op that computes ``tensor``, looking through pass-through ops and function calls.

    Tensor names are ``node:index`` in a graph and ``node:output_arg:index`` inside a function.
    """
    for _ in range(10_000):  # a graph is finite; the bound only guards against a malformed one
        parts = tensor.lstrip("^").split(":")
        node = nodes.get(parts[0])
        if node is None:
            return None
        index = int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 0
        if node.op in _PASS_THROUGH_OPS:
            tensor = node.input[index if node.op == "IdentityN" else 0]
            continue
        if node.op in ("StatefulPartitionedCall", "PartitionedCall") and node.attr["f"].func.name in library:
            function = library[node.attr["f"].func.name]
            if index >= len(function.signature.output_arg):
                return None
            inner = {inner_node.name: inner_node for inner_node in function.node_def}
            return _producing_op(inner, function.ret[function.signature.output_arg[index].name], library)
        return node.op
    return None


def export_serving_model(
    model: Any,
    tf_transform_output: tft.TFTransformOutput | None,
    path: str,
    *,
    raw_feature_spec: Mapping[str, Any] | None = None,
    label_key: str | None = None,
) -> None:
    """Saves ``model`` (Keras 3 or any callable tf.Module) as a SavedModel at ``path``.

    ``serving_default`` parses serialized raw ``tf.Example``s under
    ``raw_feature_spec`` (default: the transform output's raw spec) without
    ``label_key``, applies the tf.Transform graph, keeps the transformed
    features the model takes, and returns the model's outputs as a dict
    (``{"outputs": tensor}`` for a single output). ``transform_features`` gives
    the transformed features of rows that may include the label. Without a
    transform output, ``raw_feature_spec`` is required and the model gets the
    parsed raw features. Whether the model outputs probabilities or logits
    (``detect_output_kind``) is written to ``OUTPUT_KIND_FILE`` when it can tell.
    """
    import tensorflow as tf

    if raw_feature_spec is None:
        if tf_transform_output is None:
            raise ValueError("export_serving_model needs raw_feature_spec when there is no transform output")
        raw_feature_spec = tf_transform_output.raw_feature_spec()
    full_spec = dict(raw_feature_spec)
    serving_spec = {name: spec for name, spec in full_spec.items() if name != label_key}
    input_names = _model_input_names(model)

    module = tf.Module()
    module.model = model
    module.tft_layer = tf_transform_output.transform_features_layer() if tf_transform_output else None

    def transform(features: dict[str, Any]) -> dict[str, Any]:
        return dict(module.tft_layer(features)) if module.tft_layer is not None else features

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        transformed = transform(tf.io.parse_example(examples, serving_spec))
        if input_names is not None:
            transformed = {name: transformed[name] for name in input_names}
        return _as_output_dict(module.model(transformed))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return transform(tf.io.parse_example(examples, full_spec))

    module.serve = serve
    module.transform_features = transform_features
    tf.saved_model.save(
        module, path, signatures={"serving_default": serve, "transform_features": transform_features}
    )
    kind = detect_output_kind(model)
    if kind is not None:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(FileSystems.join(path, OUTPUT_KIND_FILE)) as handle:
            handle.write(kind.encode("utf-8"))


def warm_start(model: Any, base_model: str) -> None:
    """Load into ``model`` the weights of the Keras model ``export_serving_model`` saved at ``base_model``.

    ``base_model`` is a SavedModel directory (``fn_args.base_model``) or a Model artifact's
    uri (its ``Format-Serving`` directory is used). The export keeps
    the Keras model as the ``model`` attribute of the saved module, so its variables are
    restored through TensorFlow's object graph, layer by layer: ``model`` must have the
    architecture of the base model (the same ``build_model`` and hyperparameters). A
    model whose weights do not all match fails, naming what differs, rather than
    training silently from its random initialisation.
    """
    import tensorflow as tf

    from beam_ml.local_copies import local_copy

    checkpoint = tf.train.Checkpoint(model=model)
    try:
        status = checkpoint.read(os.path.join(local_copy(serving_path(base_model)), "variables", "variables"))
        status.expect_partial()  # the transform layer and the signatures are not part of the Keras model
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
        raise ValueError(
            f"cannot warm start from {base_model}: its saved model does not have this model's layers "
            f"({error}); build the model as the base model was built, or train without base_model"
        ) from error


def serving_path(model_uri: str) -> str:
    """The SavedModel directory of a Model artifact: ``<uri>/Format-Serving``, or the uri itself."""
    return serving_uri(model_uri)


def load_serving_model(path: str) -> Any:
    """The SavedModel at ``path`` (a Model artifact's uri or its ``Format-Serving`` directory)."""
    import tensorflow as tf

    from beam_ml.local_copies import local_copy

    return tf.saved_model.load(local_copy(serving_path(path)))


def serialize_examples(batch: pa.RecordBatch | pa.Table, columns: Sequence[str] | None = None) -> list[bytes]:
    """Raw rows (flat Arrow columns, nulls allowed) → serialized ``tf.Example``s for the signatures.

    A null becomes an absent feature, exactly as tf.Transform saw it during training.
    """
    from tfx_bsl.coders import example_coder

    from beam_ml.transforms.tfxio_layout import to_tfxio_batch

    batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
    encoded: list[bytes] = []
    for item in batches:
        lists = to_tfxio_batch(item, columns)
        # TFXIO's layout turns a null into [], which tfx_bsl encodes as a feature with an
        # empty value list, and parse_example rejects that for a FixedLenFeature even
        # when it has a default. A null list entry is encoded as a feature with no
        # values at all, which parse_example treats as absent (the default applies).
        arrays = [_null_where_null(lists.column(name), item.column(name)) for name in lists.schema.names]
        encoded.extend(example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(arrays, lists.schema.names)))
    return encoded


def _null_where_null(lists: pa.LargeListArray, source: pa.Array) -> pa.Array:
    if source.null_count == 0 or lists.null_count == source.null_count:
        return lists
    return pa.LargeListArray.from_arrays(lists.offsets, lists.values, mask=source.is_null())

