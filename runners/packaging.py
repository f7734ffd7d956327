"""Shipping beam-ml's code and the user's modules to workers that cannot see this machine's disk.

Beam pickles DoFns and functions by reference to their modules, so a worker
must be able to import ``beam_ml`` (the framework, ``beam_ml.transforms``,
``beam_ml.runners``) and the user modules a pipeline loaded (pipeline files
and ``UserModule`` files, imported as ``beam_ml_pipeline_<hash>`` /
``beam_ml_user_<hash>``). ``build_package`` copies exactly those sources,
from wherever they are imported (a source checkout or an installed beam-ml),
into a source distribution built on the fly, with beam-ml's install
requirements; ``ship_code`` adds it to ``--extra_package`` so Beam stages it and
every worker pip-installs it before running anything. Packages are cached by
the hash of their contents: one build per distinct code, not per component.

Not every worker installs staged packages: a Beam worker pool
(``worker_pool_main``, ``--environment_type EXTERNAL``) starts plain ``python``
SDK workers that import only what their environment has. So the user modules
are also pickled by value (``pickle_user_modules_by_value``): a DoFn that
refers to a function of a user module (tf.Transform's ``preprocessing_fn``)
carries that function's code, and the worker needs only beam-ml and its
dependencies installed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from beam_ml import tool_cache

PACKAGE_NAME = "beam_ml_job"
USER_MODULE_PREFIXES = ("beam_ml_user_", "beam_ml_pipeline_")
_SKIP = ("__pycache__", ".pyc", ".pyo")


def ship_code(options: PipelineOptions) -> str:
    """Build (or reuse) the package and add it to the options' ``--extra_package``; returns its path."""
    path = build_package()
    setup = options.view_as(SetupOptions)
    setup.extra_packages = [*(setup.extra_packages or []), path]
    return path


def package_sources() -> dict[str, Path]:
    """What the package holds: its relative path → the file it is copied from."""
    import beam_ml
    import beam_ml.runners
    import beam_ml.transforms

    files: dict[str, Path] = {}
    roots = {"beam_ml": beam_ml, "beam_ml/transforms": beam_ml.transforms, "beam_ml/runners": beam_ml.runners}
    for target, package in roots.items():
        source = Path(next(iter(package.__path__)))
        for path in sorted(source.rglob("*.py")):
            relative = path.relative_to(source)
            if any(part in _SKIP for part in relative.parts):
                continue
            # a source checkout keeps transforms/ and runners/ outside beam_ml/: never copy them twice
            if target == "beam_ml" and relative.parts[0] in ("transforms", "runners"):
                continue
            files[f"{target}/{relative.as_posix()}"] = path
    for name, module in sorted(sys.modules.items()):
        if name.startswith(USER_MODULE_PREFIXES) and getattr(module, "__file__", None):
            files[f"{name}.py"] = Path(module.__file__)
    return files


def pickle_user_modules_by_value() -> list[str]:
    """Have Beam's pickler carry the code of the user modules loaded so far; returns their names."""
    from apache_beam.internal.cloudpickle import cloudpickle

    names = [name for name in sorted(sys.modules) if name.startswith(USER_MODULE_PREFIXES)]
    for name in names:
        cloudpickle.register_pickle_by_value(sys.modules[name])
    return names


def requirements() -> list[str]:
    """beam-ml's install requirements (without extras), so workers get the same pinned set."""
    try:
        found = importlib.metadata.requires("beam-ml") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return sorted(r for r in found if "extra ==" not in r)


def package_cache() -> Path:
    return tool_cache.cache_dir("packages")


def build_package(cache: Path | None = None) -> str:
    """The sdist of the current code: built once per content hash, then reused."""
    sources = package_sources()
    needs = requirements()
    digest = hashlib.sha256("\n".join(needs).encode())
    for relative, path in sorted(sources.items()):
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    version = "0.0.0+" + digest.hexdigest()[:16]
    out = (cache or package_cache()) / digest.hexdigest()[:16]
    built = sorted(out.glob(f"{PACKAGE_NAME}-*.tar.gz")) if out.is_dir() else []
    if built:
        return str(built[0])
    with tempfile.TemporaryDirectory(prefix="beam-ml-package-") as staging:
        root = Path(staging)
        for relative, path in sources.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / relative)
        modules = sorted(r[: -len(".py")] for r in sources if "/" not in r)
        (root / "setup.py").write_text(_SETUP.format(name=PACKAGE_NAME, version=version, modules=modules, requires=needs))
        partial = out.with_name(out.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        done = subprocess.run(
            [sys.executable, "setup.py", "-q", "sdist", "--formats=gztar", "-d", str(partial)],
            cwd=root, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"building the package of beam-ml's code for the workers failed: {done.stderr.strip()[-800:]}")
        shutil.rmtree(out, ignore_errors=True)
        partial.rename(out)
    return str(next(out.glob(f"{PACKAGE_NAME}-*.tar.gz")))


_SETUP = '''"""beam-ml's code and a pipeline's user modules, packaged for Beam workers (built by beam_ml.runners.packaging)."""
from setuptools import find_packages, setup

setup(
    name={name!r},
    version={version!r},
    packages=find_packages(include=["beam_ml", "beam_ml.*"]),
    py_modules={modules!r},
    install_requires={requires!r},
)
'''
