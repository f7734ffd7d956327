"""Artifact types: what flows between components, and where it lives on disk.

An artifact is a directory (``uri``) plus a small JSON-serialisable
``properties`` dict. The type says how the directory is laid out; the layout
follows TFX wherever TFX's files are a standard of the ecosystem, so TFX and
TFDV users can read our outputs (see ARCHITECTURE.md, "Components and
artifacts").

New artifact types are plain subclasses; the class name is the type name
recorded in the metadata store, and ``artifact_type(name)`` finds the class
again when the CLI shows an artifact.
"""

from __future__ import annotations

from typing import Any, ClassVar

_REGISTRY: dict[str, type[Artifact]] = {}


class Artifact:
    """A typed directory produced by one execution and consumed by others."""

    TYPE_NAME: ClassVar[str] = "Artifact"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TYPE_NAME = cls.__name__
        _REGISTRY[cls.TYPE_NAME] = cls

    def __init__(
        self,
        uri: str,
        properties: dict[str, Any] | None = None,
        *,
        id: int | None = None,
        fingerprint: str | None = None,
        state: str | None = None,
    ) -> None:
        self.uri = uri
        self.properties: dict[str, Any] = dict(properties or {})
        self.id = id
        self.fingerprint = fingerprint
        self.state = state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, uri={self.uri!r}, state={self.state})"

    @classmethod
    def content_fingerprint(cls, uri: str) -> str:
        """The fingerprint recorded when an artifact of this type is published (and checked by ``check``).

        The bytes of every file by default; a type whose writer is not
        byte-for-byte deterministic says here what content counts.
        """
        from beam_ml import fs

        return fs.fingerprint(uri)


_REGISTRY[Artifact.TYPE_NAME] = Artifact


def artifact_type(type_name: str) -> type[Artifact]:
    """The class registered under ``type_name``; plain ``Artifact`` if unknown here."""
    return _REGISTRY.get(type_name, Artifact)


class EmptySplitError(ValueError):
    """A component was given a split with no rows, which it cannot work on."""


class _SplitArtifact(Artifact):
    """An artifact laid out as ``Split-<name>/`` directories, as TFX lays them out."""

    #: The property holding rows per split, written by the producing component.
    ROWS_PROPERTY: ClassVar[str] = ""

    def require_rows(self, splits: str | list[str], component: str, each: bool = True) -> None:
        """Fail naming the split when one of `splits` holds no rows (or, with each=False,
        when all of them are empty: statistics of one empty split are still statistics).

        An empty split otherwise surfaces deep inside a library (TensorFlow's TypeError
        in Transform, a Keras fit that never starts), saying nothing of 0 rows.
        """
        rows = self.properties.get(self.ROWS_PROPERTY) or {}
        names = [splits] if isinstance(splits, str) else list(splits)
        if not each and any(rows.get(split) != 0 for split in names):
            return
        for split in names:
            if rows.get(split) == 0:
                raise EmptySplitError(
                    f"{component}: split {split!r} of {type(self).__name__} {self.uri} has no rows; "
                    "give ExampleGen input with rows for it (it ran with allow_empty=True)")

    def split_uri(self, split: str) -> str:
        from beam_ml import fs

        return fs.join(self.uri, f"Split-{split}")

    @property
    def splits(self) -> list[str]:
        return list(self.properties.get("splits", []))


class Examples(_SplitArtifact):
    """Rows of data: ``Split-<name>/*.parquet``."""

    ROWS_PROPERTY = "split_rows"


class Statistics(_SplitArtifact):
    """``Split-<name>/FeatureStats.pb``: a tensorflow_metadata DatasetFeatureStatisticsList."""

    ROWS_PROPERTY = "num_examples"


class Schema(Artifact):
    """``schema.pbtxt``: a tensorflow_metadata Schema in text format."""

    FILE_NAME: ClassVar[str] = "schema.pbtxt"


class Anomalies(_SplitArtifact):
    """``Split-<name>/SchemaDiff.pb``: tensorflow_metadata Anomalies."""


class TransformGraph(Artifact):
    """A tf.Transform output directory (transform_fn/ and transformed_metadata/)."""

    @classmethod
    def content_fingerprint(cls, uri: str) -> str:
        """Identical for identical inputs although TensorFlow's SavedModel bytes are not (``beam_ml.fingerprints``)."""
        from beam_ml.fingerprints import saved_model_fingerprint

        return saved_model_fingerprint(uri)


class Model(Artifact):
    """A SavedModel whose serving signature takes raw features."""


class ModelRun(Artifact):
    """Training logs (TensorBoard) of the run that produced a Model."""


class HyperParameters(Artifact):
    """The best hyperparameters a Tuner found, as JSON."""


class ModelEvaluation(Artifact):
    """Metrics per slice."""


class ModelBlessing(Artifact):
    """Whether a model passed evaluation: BLESSED or NOT_BLESSED, and why."""


class InfraBlessing(Artifact):
    """Whether a model loads and serves in a fresh process."""


class PushedModel(Artifact):
    """Where a blessed model was pushed to."""


class InferenceResult(Artifact):
    """Parquet of input rows plus prediction columns."""
