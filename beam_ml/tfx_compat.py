"""TFX's module-file API for user modules written against TFX, when TFX itself is not installed.

TFX module files start with ``from tfx import v1 as tfx`` (or
``from tfx.components.trainer.fn_args_utils import FnArgs``) only to name the
objects TFX hands their ``run_fn``/``tuner_fn``. TFX cannot be installed beside
beam-ml (ml-metadata has no wheel for our platforms), so such a file would
fail at its first line. ``install()`` (called by ``UserModule.load``) adds an
import hook that answers those imports with beam-ml's own implementations:

=============================================  ===========================================
``tfx.v1.components.FnArgs``                   ``beam_ml.training.FnArgs``
``tfx.v1.components.DataAccessor``             ``beam_ml.training.DataAccessor``
``tfx.v1.components.TunerFnResult``            ``beam_ml.components.tuner.TunerFnResult``
``tfx.components.trainer.fn_args_utils``       ``FnArgs``, ``DataAccessor`` (as above)
``tfx.components.tuner.component``             ``TunerFnResult`` (as above)
=============================================  ===========================================

Nothing else of TFX exists; importing another ``tfx`` name fails with an error
that lists these. A real TFX always wins: the hook is not installed when
``tfx`` can be found, and it sits last on ``sys.meta_path``, so any ``tfx`` on
``sys.path`` is found before it. No ``tfx`` package is ever written to disk.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["PROVIDED", "install", "installed"]

#: Every module the hook provides: its attributes (``"module:attribute"`` of the
#: beam-ml implementation) and its submodules.
PROVIDED: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "tfx": ({}, ("v1", "components")),
    "tfx.v1": ({}, ("components",)),
    "tfx.v1.components": (
        {
            "FnArgs": "beam_ml.training:FnArgs",
            "DataAccessor": "beam_ml.training:DataAccessor",
            "TunerFnResult": "beam_ml.components.tuner:TunerFnResult",
        },
        (),
    ),
    "tfx.components": ({}, ("trainer", "tuner")),
    "tfx.components.trainer": ({}, ("fn_args_utils",)),
    "tfx.components.trainer.fn_args_utils": (
        {"FnArgs": "beam_ml.training:FnArgs", "DataAccessor": "beam_ml.training:DataAccessor"},
        (),
    ),
    "tfx.components.tuner": ({}, ("component",)),
    "tfx.components.tuner.component": ({"TunerFnResult": "beam_ml.components.tuner:TunerFnResult"}, ()),
}


def _names() -> str:
    return ", ".join(f"{module}.{name}" for module, (attributes, _) in PROVIDED.items() for name in attributes)


def _provided_module(name: str) -> ModuleType:
    """A ``tfx.*`` module of the hook, installing the hook first: how such a module is unpickled."""
    if not install():
        raise ImportError(f"cannot provide {name}: a real tfx is importable in this process")
    return importlib.import_module(name)


class _ProvidedModule(ModuleType):
    """A ``tfx.*`` module of the hook; an absent name says what exists.

    It pickles as a call that reinstalls the hook and imports it again, so a
    user module's functions pickled by value (``beam_ml.dsl``) unpickle in a
    Beam worker process where nothing installed the hook.
    """

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _provided_module, (self.__name__,)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.__name__}.{name} is not part of the TFX API beam-ml provides without TFX "
            f"(it has: {_names()}); see the README's 'Coming from TFX'"
        )


class _TfxApiLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return _ProvidedModule(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        attributes, submodules = PROVIDED[module.__name__]
        for name, target in attributes.items():
            module_name, attribute = target.split(":")
            setattr(module, name, getattr(importlib.import_module(module_name), attribute))
        for child in submodules:
            setattr(module, child, importlib.import_module(f"{module.__name__}.{child}"))


class _TfxApiFinder(importlib.abc.MetaPathFinder):
    """Finds the ``tfx.*`` modules of ``PROVIDED``; consulted only after every other finder failed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tfx" and not fullname.startswith("tfx."):
            return None
        if fullname not in PROVIDED:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: TFX is not installed and beam-ml provides only "
                f"{_names()} (see the README's 'Coming from TFX')",
                name=fullname,
            )
        is_package = bool(PROVIDED[fullname][1])
        return importlib.machinery.ModuleSpec(fullname, _TfxApiLoader(), is_package=is_package)


def installed() -> bool:
    """Whether the hook is on ``sys.meta_path``."""
    return any(isinstance(finder, _TfxApiFinder) for finder in sys.meta_path)


def install() -> bool:
    """Adds the hook unless a real ``tfx`` can be imported (or it is there already); True if it is on."""
    if installed():
        return True
    if importlib.util.find_spec("tfx") is not None:
        return False
    sys.meta_path.append(_TfxApiFinder())
    return True
