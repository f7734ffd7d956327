"""Declaring pipelines: components are typed functions, the graph comes from their wiring.

    @component
    def StatisticsGen(examples: Input[Examples], statistics: Output[Statistics],
                      *, sample_rate: float = 1.0): ...

    gen = ExampleGen(input_path="data.csv")
    stats = StatisticsGen(examples=gen.outputs.examples, sample_rate=0.5)
    pipeline = Pipeline("penguin", root="pipelines/penguin", components=[gen, stats])

Everything a user can get wrong when wiring (a wrong artifact type, a missing
input, an unknown or ill-typed parameter, a cycle, a producer left out of the
pipeline) fails while the pipeline is built, with the component and argument
named, not halfway through a run.
"""

from __future__ import annotations

import dataclasses
import graphlib
import hashlib
import importlib.util
import inspect
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, Literal, TypeVar, Union

from beam_ml.artifacts import Artifact

A = TypeVar("A", bound=Artifact)


class Input(Generic[A]):
    """Annotation of a component argument that consumes an artifact: ``Input[Examples]``.

    ``Input[Examples] | None = None`` declares an optional input.
    """


class Output(Generic[A]):
    """Annotation of a component argument that the component writes: ``Output[Statistics]``."""


class PipelineDefinitionError(ValueError):
    """A pipeline that cannot run as declared; raised while it is being built."""


class UserModule:
    """A user's Python module named by file path or dotted name (a preprocessing_fn, a run_fn).

    Declare a parameter as ``module_file: UserModule``, pass a string. The
    file's bytes are part of the component's cache key, so editing the module
    re-runs the component even though the parameter string is unchanged.
    """

    def __init__(self, reference: str, base_dir: str | None = None) -> None:
        self.reference = reference
        self.path = _resolve_module_path(reference, base_dir)

    def sha256(self) -> str:
        with open(self.path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()

    def load(self) -> ModuleType:
        """Import the module (once per process) so its functions can be called and pickled.

        Its directory goes on ``sys.path`` so it can import the modules beside it.
        When TFX is not installed, the module's ``tfx`` imports get beam-ml's
        implementation of TFX's module-file API (``beam_ml.tfx_compat``).
        """
        from beam_ml import tfx_compat

        name = "beam_ml_user_" + hashlib.sha256(self.path.encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        directory = os.path.dirname(self.path)
        if directory not in sys.path:
            sys.path.append(directory)
        spec = importlib.util.spec_from_file_location(name, self.path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load user module {self.reference!r} from {self.path}")
        tfx_compat.install()
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _pickle_by_value(module)
        return module

    def get(self, attribute: str) -> Any:
        """A function or value the module must define, with an error that says which."""
        module = self.load()
        if not hasattr(module, attribute):
            raise AttributeError(f"user module {self.reference!r} ({self.path}) defines no {attribute!r}")
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"UserModule({self.reference!r})"


def _pickle_by_value(module: ModuleType) -> None:
    """Beam pickles the module's functions and classes with their code, not as a reference.

    The module's name (``beam_ml_user_<hash>``) is importable only in the process
    that loaded it; a Beam worker in another process (DirectRunner's
    multi_processing mode, Flink, Dataflow) that unpickles a function referring
    to it by name fails with ``No module named 'beam_ml_user_...'``. By value,
    its ``tfx`` imports travel as references to ``beam_ml.tfx_compat``, which
    reinstalls its hook in the worker.
    """
    from apache_beam.internal.cloudpickle import cloudpickle

    cloudpickle.register_pickle_by_value(module)


class FilePattern(str):
    """A parameter naming input files outside the pipeline (a path or glob; local, gs://, s3://).

    Declare ``input_path: FilePattern``, pass a string. The names, sizes and
    modification times of the matching files are part of the cache key, so
    new or changed data re-runs the component that reads it. A relative local
    path is made absolute when the pipeline is built.
    """

    def __new__(cls, pattern: str) -> FilePattern:
        if "://" not in pattern and not os.path.isabs(pattern):
            pattern = os.path.abspath(pattern)
        return super().__new__(cls, pattern)

    def fingerprint(self) -> str:
        """A hash of (path, size, mtime) of every matching file; empty matches hash too.

        A span pattern (``{SPAN}``, ``{VERSION}``, dates: ``beam_ml.spans``) hashes every
        span and version it matches, so a new span re-runs the component that reads it.
        """
        from beam_ml import spans

        return spans.matched_files_fingerprint(self)


def _resolve_module_path(reference: str, base_dir: str | None) -> str:
    if reference.endswith(".py") or os.sep in reference:
        path = reference if os.path.isabs(reference) else os.path.join(base_dir or os.getcwd(), reference)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"user module file not found: {path}")
        return os.path.abspath(path)
    try:
        spec = importlib.util.find_spec(reference)
    except (ImportError, ValueError) as error:
        raise ModuleNotFoundError(f"user module {reference!r} cannot be found: {error}") from error
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise ModuleNotFoundError(f"user module {reference!r} cannot be found on sys.path")
    return os.path.abspath(spec.origin)


# --- component declaration -------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    type: type[Artifact]
    optional: bool


@dataclass(frozen=True)
class ParamSpec:
    annotation: Any
    default: Any
    required: bool


@dataclass(frozen=True)
class ComponentSpec:
    """What a component function declares, read once from its signature."""

    name: str
    fn: Callable[..., Any]
    inputs: Mapping[str, InputSpec]
    outputs: Mapping[str, type[Artifact]]
    params: Mapping[str, ParamSpec]
    context_arg: str | None
    code_version: str
    #: A resolver (``beam_ml.resolvers``) runs no code of its own on data: it picks existing
    #: artifacts from the metadata store, and its consumers record them as their inputs.
    resolver: bool = False

    @property
    def type_id(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


class Component:
    """A declared component. Calling it with inputs and parameters gives a ``Node``."""

    def __init__(self, spec: ComponentSpec) -> None:
        self.spec = spec
        self.__doc__ = spec.fn.__doc__
        self.__name__ = spec.name
        self.__wrapped__ = spec.fn

    def __call__(self, **kwargs: Any) -> Node:
        return Node.build(self.spec, kwargs)

    def __repr__(self) -> str:
        return f"<component {self.spec.name}>"


def component(fn: Callable[..., Any] | None = None, *, version: str = "") -> Any:
    """Declare a typed function as a component.

    ``version`` is folded into the cache key beside a hash of the function's
    module source; bump it when behaviour changes in code the hash cannot see.
    """

    def wrap(function: Callable[..., Any]) -> Component:
        return Component(_read_spec(function, version))

    return wrap(fn) if fn is not None else wrap


def resolver(
    fn: Callable[..., Any] | None = None, *, outputs: Mapping[str, type[Artifact]], version: str = ""
) -> Any:
    """Declare a function that picks artifacts from the metadata store as a node of the graph.

    The function takes a ``ResolverContext`` (the store, the pipeline's name), its
    ``Input[...]`` arguments (artifacts of this run, e.g. the candidate model) and
    parameters, and returns ``{output name: ArtifactRecord or None}`` for the
    ``outputs`` declared here; None is an empty resolution (no blessed model yet).
    Its consumers record what it picked as their inputs: lineage shows it and it is
    part of their cache key, where a look-up inside a component would be hidden.
    """

    def wrap(function: Callable[..., Any]) -> Component:
        spec = _read_spec(function, version)
        if spec.outputs:
            raise TypeError(f"resolver {spec.name}: declare outputs in @resolver(outputs=...), not as arguments")
        return Component(dataclasses.replace(spec, outputs=dict(outputs), resolver=True))

    return wrap(fn) if fn is not None else wrap


def _read_spec(fn: Callable[..., Any], version: str) -> ComponentSpec:
    from beam_ml.context import ExecutionContext, ResolverContext

    where = f"component {fn.__name__}"
    hints = typing.get_type_hints(fn)
    inputs: dict[str, InputSpec] = {}
    outputs: dict[str, type[Artifact]] = {}
    params: dict[str, ParamSpec] = {}
    context_arg = None
    for name, parameter in inspect.signature(fn).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{where}: *args/**kwargs are not allowed; declare every argument")
        if name not in hints:
            raise TypeError(f"{where}: argument {name!r} needs a type annotation")
        hint = hints[name]
        artifact_kind, artifact_cls, optional = _artifact_annotation(hint)
        if artifact_kind == "input":
            if optional and parameter.default is not None:
                raise TypeError(f"{where}: optional input {name!r} must default to None")
            inputs[name] = InputSpec(artifact_cls, optional)
        elif artifact_kind == "output":
            if optional:
                raise TypeError(f"{where}: output {name!r} cannot be optional")
            outputs[name] = artifact_cls
        elif hint in (ExecutionContext, ResolverContext):
            context_arg = name
        else:
            _check_supported(hint, f"{where}: parameter {name!r}")
            required = parameter.default is inspect.Parameter.empty
            default = None if required else parameter.default
            if not required:
                _check_value(default, hint, f"{where}: default of parameter {name!r}")
            params[name] = ParamSpec(hint, default, required)
    return ComponentSpec(
        name=fn.__name__,
        fn=fn,
        inputs=inputs,
        outputs=outputs,
        params=params,
        context_arg=context_arg,
        code_version=_code_version(fn, version),
    )


def _artifact_annotation(hint: Any) -> tuple[str | None, type[Artifact] | None, bool]:
    """('input'|'output'|None, artifact class, optional) for an annotation."""
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and typing.get_origin(args[0]) in (Input, Output):
            hint, optional = args[0], True
    origin = typing.get_origin(hint)
    if origin not in (Input, Output):
        return None, None, False
    (artifact_cls,) = typing.get_args(hint)
    if not (isinstance(artifact_cls, type) and issubclass(artifact_cls, Artifact)):
        raise TypeError(f"{hint} must name an Artifact subclass")
    return ("input" if origin is Input else "output"), artifact_cls, optional


def _code_version(fn: Callable[..., Any], version: str) -> str:
    import beam_ml

    module = sys.modules.get(fn.__module__)
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(fn)
    except (OSError, TypeError):
        source = fn.__qualname__
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return f"{beam_ml.__version__}:{version}:{digest}"


# --- parameter checking and canonical encoding ----------------------------------------

_SCALARS = (int, float, str, bool)


def _is_proto_class(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "DESCRIPTOR") and hasattr(hint, "SerializeToString")


def _check_supported(hint: Any, where: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SCALARS or hint in (UserModule, FilePattern) or hint is Any or hint is type(None):
        return
    if _is_proto_class(hint) or (dataclasses.is_dataclass(hint) and isinstance(hint, type)):
        if dataclasses.is_dataclass(hint) and not hint.__dataclass_params__.frozen:
            raise TypeError(f"{where}: dataclass {hint.__name__} must be frozen")
        return
    if origin is Literal:
        return
    if origin in (list, tuple, dict, Union, types.UnionType):
        for arg in args:
            if arg is not Ellipsis:
                _check_supported(arg, where)
        return
    raise TypeError(
        f"{where}: type {hint!r} is not a supported parameter type "
        "(int, float, str, bool, list, dict, Literal, frozen dataclass, protobuf message, UserModule, FilePattern)"
    )


def _check_value(value: Any, hint: Any, where: str) -> Any:
    """Validate ``value`` against ``hint``; returns it, with ints widened to float where declared."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)

    def fail() -> typing.NoReturn:
        raise PipelineDefinitionError(f"{where}: expected {_type_name(hint)}, got {value!r}")

    if hint is Any:
        return value
    if hint is type(None):
        if value is not None:
            fail()
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        if len(candidates) == 1:  # Optional[X]: X's own error says more than "X | None"
            return _check_value(value, candidates[0], where)
        for arg in candidates:
            try:
                return _check_value(value, arg, where)
            except PipelineDefinitionError:
                continue
        fail()
    if hint is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail()
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            fail()
        return value
    if hint is FilePattern:
        if not isinstance(value, str) or not value:
            fail()
        return FilePattern(value)
    if hint is UserModule:
        if isinstance(value, UserModule):
            return value
        if not isinstance(value, str):
            fail()
        try:
            return UserModule(value)
        except (FileNotFoundError, ModuleNotFoundError) as error:
            raise PipelineDefinitionError(f"{where}: {error}") from error
    if origin is Literal:
        if value not in args:
            fail()
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            fail()
        (item,) = args or (Any,)
        return [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            fail()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            fail()
        return tuple(_check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            fail()
        key_type, value_type = args or (Any, Any)
        return {
            _check_value(k, key_type, f"{where} key"): _check_value(v, value_type, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_proto_class(hint)):
        if not isinstance(value, hint):
            fail()
        return value
    fail()


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def encode_param(value: Any) -> Any:
    """A canonical JSON-able form of a parameter value: for the cache key and the store."""
    if isinstance(value, UserModule):
        return {"__user_module__": value.reference, "path": value.path}
    if _is_proto_class(type(value)):
        from google.protobuf import text_format

        return {"__proto__": type(value).DESCRIPTOR.full_name, "text": text_format.MessageToString(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: encode_param(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__dataclass__": f"{cls.__module__}.{cls.__qualname__}", "fields": fields}
    if isinstance(value, Mapping):
        return {str(k): encode_param(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [encode_param(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN has no JSON form
        return {"__float__": "nan"}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # Any other object inside a parameter (a user's StatsGenerator in StatsOptions): its class
    # and settings, never its address in memory; its code is in external_fingerprints.
    cls = type(value)
    return {"__object__": f"{cls.__module__}.{cls.__qualname__}", "state": encode_param(getattr(value, "__dict__", {}))}


def _code_fingerprint(cls: type) -> str:
    """A hash of the source file defining ``cls``: editing a user's generator re-runs its step."""
    try:
        with open(inspect.getsourcefile(cls), "rb") as handle:  # type: ignore[arg-type]
            return hashlib.sha256(handle.read()).hexdigest()
    except (TypeError, OSError):  # built in, or defined where no file is (an interactive session)
        return hashlib.sha256(f"{cls.__module__}.{cls.__qualname__}".encode()).hexdigest()


def external_fingerprints(params: Mapping[str, Any]) -> dict[str, str]:
    """Hashes of what parameters point at outside the pipeline: user modules, input files.

    Keyed by where the value sits (``module_file``, ``input_path.train``), so
    the cache key changes when a file's contents change, not only its name.
    """
    found: dict[str, str] = {}

    def visit(where: str, value: Any) -> None:
        if isinstance(value, UserModule):
            found[where] = value.sha256()
        elif isinstance(value, FilePattern):
            found[where] = value.fingerprint()
        elif isinstance(value, Mapping):
            for key, item in value.items():
                visit(f"{where}.{key}", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                visit(f"{where}[{index}]", item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                visit(f"{where}.{f.name}", getattr(value, f.name))
        elif not _is_proto_class(type(value)) and not isinstance(value, str | int | float | bool | type(None)):
            found[where] = _code_fingerprint(type(value))

    for name, value in params.items():
        visit(name, value)
    return found


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


# --- the graph -------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """One output of one node, as wired into another node's input."""

    producer_id: str
    output: str
    type: type[Artifact]

    def __repr__(self) -> str:
        return f"{self.producer_id}.outputs.{self.output}"


class _Outputs:
    """``node.outputs.examples`` or ``node.outputs["examples"]``."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def __getitem__(self, name: str) -> Channel:
        outputs = self._node.spec.outputs
        if name not in outputs:
            raise KeyError(f"{self._node.id} has no output {name!r}; it has {sorted(outputs)}")
        return Channel(self._node.id, name, outputs[name])

    def __getattr__(self, name: str) -> Channel:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(str(error)) from None

    def __iter__(self):
        return iter(self._node.spec.outputs)


@dataclass(frozen=True)
class Node:
    """A component with its inputs wired and its parameters bound; ``id`` is unique in a pipeline."""

    id: str
    spec: ComponentSpec
    inputs: Mapping[str, Channel | None]
    params: Mapping[str, Any]

    @classmethod
    def build(cls, spec: ComponentSpec, kwargs: Mapping[str, Any]) -> Node:
        where = f"component {spec.name}"
        inputs: dict[str, Channel | None] = {}
        params: dict[str, Any] = {}
        for name, value in kwargs.items():
            if name in spec.inputs:
                inputs[name] = _check_input(spec, name, value)
            elif name in spec.params:
                params[name] = _check_value(value, spec.params[name].annotation, f"{where}: parameter {name!r}")
            elif name in spec.outputs:
                raise PipelineDefinitionError(f"{where}: {name!r} is an output; it is not passed in")
            else:
                known = sorted([*spec.inputs, *spec.params])
                raise PipelineDefinitionError(f"{where}: unknown argument {name!r}; it takes {known}")
        for name, input_spec in spec.inputs.items():
            if name not in inputs:
                if not input_spec.optional:
                    raise PipelineDefinitionError(
                        f"{where}: required input {name!r} ({input_spec.type.__name__}) is not wired"
                    )
                inputs[name] = None
        for name, param in spec.params.items():
            if name not in params:
                if param.required:
                    raise PipelineDefinitionError(f"{where}: required parameter {name!r} is not given")
                params[name] = param.default
        return cls(spec.name, spec, inputs, params)

    @property
    def outputs(self) -> _Outputs:
        return _Outputs(self)

    def with_id(self, node_id: str) -> Node:
        """A copy under another id, to use one component twice in a pipeline."""
        if not node_id.isidentifier():
            raise PipelineDefinitionError(f"component id {node_id!r} must be a Python identifier")
        return dataclasses.replace(self, id=node_id)

    def with_inputs(self, **channels: Channel | None) -> Node:
        """A copy with some inputs rewired."""
        inputs = dict(self.inputs)
        for name, value in channels.items():
            if name not in self.spec.inputs:
                raise PipelineDefinitionError(f"component {self.id}: unknown input {name!r}")
            inputs[name] = _check_input(self.spec, name, value)
        return dataclasses.replace(self, inputs=inputs)

    def with_params(self, **values: Any) -> Node:
        """A copy with some parameters changed."""
        params = dict(self.params)
        for name, value in values.items():
            if name not in self.spec.params:
                raise PipelineDefinitionError(f"component {self.id}: unknown parameter {name!r}")
            params[name] = _check_value(
                value, self.spec.params[name].annotation, f"component {self.id}: parameter {name!r}"
            )
        return dataclasses.replace(self, params=params)

    @property
    def upstream_ids(self) -> set[str]:
        return {c.producer_id for c in self.inputs.values() if c is not None}


def _check_input(spec: ComponentSpec, name: str, value: Any) -> Channel | None:
    input_spec = spec.inputs[name]
    where = f"component {spec.name}: input {name!r}"
    if value is None:
        if not input_spec.optional:
            raise PipelineDefinitionError(f"{where} is required and cannot be None")
        return None
    if isinstance(value, Node):
        raise PipelineDefinitionError(f"{where}: pass one of {value.id}'s outputs (e.g. {value.id}.outputs.<name>), not the component")
    if not isinstance(value, Channel):
        raise PipelineDefinitionError(f"{where}: expected an output channel of type {input_spec.type.__name__}, got {value!r}")
    if not issubclass(value.type, input_spec.type):
        raise PipelineDefinitionError(
            f"{where} expects {input_spec.type.__name__}, but {value!r} is {value.type.__name__}"
        )
    return value


@dataclass(frozen=True)
class Pipeline:
    """A named DAG of nodes whose order follows from their wiring.

    ``root`` is where artifacts are written and, by default, where the SQLite
    metadata store lives (``<root>/metadata.sqlite``).
    """

    name: str
    root: str
    components: tuple[Node, ...]
    metadata_url: str | None = None
    order: tuple[str, ...] = field(init=False, repr=False)

    def __init__(
        self, name: str, root: str, components: Iterable[Node], metadata_url: str | None = None
    ) -> None:
        nodes = tuple(components)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "components", nodes)
        object.__setattr__(self, "metadata_url", metadata_url)
        object.__setattr__(self, "order", _topological_order(name, nodes))

    def node(self, node_id: str) -> Node:
        for node in self.components:
            if node.id == node_id:
                return node
        raise KeyError(f"pipeline {self.name} has no component {node_id!r}")

    def with_root(self, root: str) -> Pipeline:
        return Pipeline(self.name, root, self.components, self.metadata_url)

    def with_metadata_url(self, metadata_url: str | None) -> Pipeline:
        return Pipeline(self.name, self.root, self.components, metadata_url)

    def with_components(self, components: Iterable[Node]) -> Pipeline:
        return Pipeline(self.name, self.root, components, self.metadata_url)


def _topological_order(name: str, nodes: tuple[Node, ...]) -> tuple[str, ...]:
    if not name or not name.replace("-", "_").isidentifier():
        raise PipelineDefinitionError(f"pipeline name {name!r} must be letters, digits, '_' or '-'")
    by_id: dict[str, Node] = {}
    for node in nodes:
        if not isinstance(node, Node):
            raise PipelineDefinitionError(f"pipeline {name}: {node!r} is not a component instance")
        if node.id in by_id:
            raise PipelineDefinitionError(
                f"pipeline {name}: two components have the id {node.id!r}; give one another id with .with_id()"
            )
        by_id[node.id] = node
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in nodes:
        for input_name, channel in node.inputs.items():
            if channel is None:
                continue
            producer = by_id.get(channel.producer_id)
            if producer is None:
                raise PipelineDefinitionError(
                    f"pipeline {name}: input {input_name!r} of {node.id} comes from {channel.producer_id}, "
                    "which is not in the pipeline's components"
                )
            if channel.output not in producer.spec.outputs:
                raise PipelineDefinitionError(
                    f"pipeline {name}: input {input_name!r} of {node.id} wants {channel!r}, "
                    f"but {producer.id} has no output {channel.output!r}"
                )
        sorter.add(node.id, *sorted(node.upstream_ids))
    try:
        return tuple(sorter.static_order())
    except graphlib.CycleError as error:
        cycle = " -> ".join(error.args[1])
        raise PipelineDefinitionError(f"pipeline {name}: the wiring has a cycle: {cycle}") from None
