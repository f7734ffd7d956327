"""Declaring components and pipelines: every wiring mistake fails at build time, naming where."""

import dataclasses

import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from beam_ml import (
    Artifact,
    Examples,
    Input,
    Output,
    Pipeline,
    PipelineDefinitionError,
    Schema,
    Statistics,
    UserModule,
    component,
)
from beam_ml.dsl import canonical_json, encode_param


@dataclasses.dataclass(frozen=True)
class Bucketing:
    buckets: int = 10
    names: tuple[str, ...] = ()


@component
def Gen(examples: Output[Examples], *, path: str = "x.csv") -> None: ...


@component
def Stats(
    examples: Input[Examples],
    statistics: Output[Statistics],
    *,
    sample_rate: float = 1.0,
    top_k: int = 20,
    slices: list[str] | None = None,
    options: dict[str, int] | None = None,
    bucketing: Bucketing = Bucketing(),
    schema_hint: schema_pb2.Schema | None = None,
) -> None: ...


@component
def Infer(statistics: Input[Statistics], schema: Output[Schema], baseline: Input[Schema] | None = None) -> None: ...


@component
def Loop(schema: Input[Schema], examples: Output[Examples]) -> None: ...


def test_wiring_an_output_of_the_wrong_type_names_component_and_argument():
    gen = Gen()
    with pytest.raises(PipelineDefinitionError, match=r"component Infer: input 'statistics' expects Statistics, but Gen.outputs.examples is Examples"):
        Infer(statistics=gen.outputs.examples)


def test_missing_required_input():
    with pytest.raises(PipelineDefinitionError, match=r"component Stats: required input 'examples' \(Examples\) is not wired"):
        Stats(sample_rate=0.5)


def test_unknown_parameter():
    with pytest.raises(PipelineDefinitionError, match=r"component Stats: unknown argument 'sample_rat'"):
        Stats(examples=Gen().outputs.examples, sample_rat=0.5)


def test_parameter_of_the_wrong_type():
    with pytest.raises(PipelineDefinitionError, match=r"component Stats: parameter 'top_k': expected int, got '20'"):
        Stats(examples=Gen().outputs.examples, top_k="20")
    with pytest.raises(PipelineDefinitionError, match=r"parameter 'slices'\[1\]: expected str, got 3"):
        Stats(examples=Gen().outputs.examples, slices=["a", 3])
    with pytest.raises(PipelineDefinitionError, match=r"parameter 'top_k': expected int, got True"):
        Stats(examples=Gen().outputs.examples, top_k=True)


def test_passing_a_component_instead_of_its_output():
    with pytest.raises(PipelineDefinitionError, match=r"input 'examples': pass one of Gen's outputs"):
        Stats(examples=Gen())


def test_cycle_is_reported_with_its_path():
    gen = Gen()
    stats = Stats(examples=gen.outputs.examples)
    infer = Infer(statistics=stats.outputs.statistics)
    loop = Loop(schema=infer.outputs.schema)
    # Rewire Stats to read what Loop makes from Infer's output: Stats -> Infer -> Loop -> Stats.
    looped = stats.with_inputs(examples=loop.outputs.examples)
    with pytest.raises(PipelineDefinitionError, match=r"pipeline p: the wiring has a cycle: .*Stats.*Infer.*Loop|cycle: .*Loop.*Stats"):
        Pipeline("p", "/tmp/p", [gen, looped, infer, loop])


def test_producer_missing_from_the_pipeline():
    gen = Gen()
    stats = Stats(examples=gen.outputs.examples)
    with pytest.raises(PipelineDefinitionError, match=r"input 'examples' of Stats comes from Gen, which is not in the pipeline"):
        Pipeline("p", "/tmp/p", [stats])


def test_duplicate_ids_need_with_id():
    gen = Gen()
    with pytest.raises(PipelineDefinitionError, match=r"two components have the id 'Stats'"):
        Pipeline("p", "/tmp/p", [gen, Stats(examples=gen.outputs.examples), Stats(examples=gen.outputs.examples)])
    pipeline = Pipeline(
        "p", "/tmp/p", [gen, Stats(examples=gen.outputs.examples), Stats(examples=gen.outputs.examples).with_id("Stats2")]
    )
    assert pipeline.order[0] == "Gen" and set(pipeline.order[1:]) == {"Stats", "Stats2"}


def test_order_follows_wiring_not_listing():
    gen = Gen()
    stats = Stats(examples=gen.outputs.examples)
    infer = Infer(statistics=stats.outputs.statistics)
    assert Pipeline("p", "/tmp/p", [infer, stats, gen]).order == ("Gen", "Stats", "Infer")


def test_declaration_errors():
    with pytest.raises(TypeError, match="needs a type annotation"):

        @component
        def NoHint(x) -> None: ...

    @dataclasses.dataclass
    class Mutable:
        a: int = 1

    with pytest.raises(TypeError, match="must be frozen"):

        @component
        def Bad(out: Output[Artifact], *, m: Mutable = None) -> None: ...

    with pytest.raises(TypeError, match="not a supported parameter type"):

        @component
        def Weird(out: Output[Artifact], *, s: set = frozenset()) -> None: ...


def test_structured_parameters_are_validated_and_encoded_canonically():
    schema = schema_pb2.Schema()
    schema.feature.add(name="a", type=schema_pb2.INT)
    node = Stats(
        examples=Gen().outputs.examples,
        sample_rate=1,  # an int is widened to float
        options={"b": 2, "a": 1},
        bucketing=Bucketing(5, ("x",)),
        schema_hint=schema,
    )
    assert node.params["sample_rate"] == 1.0 and isinstance(node.params["sample_rate"], float)
    encoded = {k: encode_param(v) for k, v in node.params.items()}
    assert list(encoded["options"]) == ["a", "b"]
    assert encoded["bucketing"]["fields"] == {"buckets": 5, "names": ["x"]}
    assert 'name: "a"' in encoded["schema_hint"]["text"]
    canonical_json(encoded)  # JSON-able
    with pytest.raises(PipelineDefinitionError, match="expected Bucketing"):
        Stats(examples=Gen().outputs.examples, bucketing={"buckets": 5})


def test_optional_input_defaults_to_none():
    gen = Gen()
    infer = Infer(statistics=Stats(examples=gen.outputs.examples).outputs.statistics)
    assert infer.inputs["baseline"] is None


def test_user_module_by_path_and_by_dotted_name(tmp_path):
    module_file = tmp_path / "prep.py"
    module_file.write_text("def preprocessing_fn(x):\n    return x\n")
    by_path = UserModule(str(module_file))
    assert by_path.get("preprocessing_fn")(3) == 3
    with pytest.raises(AttributeError, match="defines no 'run_fn'"):
        by_path.get("run_fn")
    by_name = UserModule("json.decoder")
    assert by_name.path.endswith("json/decoder.py")
    with pytest.raises(FileNotFoundError, match="user module file not found"):
        UserModule(str(tmp_path / "missing.py"))
    with pytest.raises(ModuleNotFoundError):
        UserModule("no_such_module_anywhere")

    @component
    def Train(model: Output[Artifact], *, module_file: UserModule) -> None: ...

    with pytest.raises(PipelineDefinitionError, match=r"component Train: parameter 'module_file': user module file not found"):
        Train(module_file=str(tmp_path / "missing.py"))
    assert isinstance(Train(module_file=str(module_file)).params["module_file"], UserModule)
