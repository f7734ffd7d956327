"""Content fingerprints of SavedModels that ignore what TensorFlow writes differently every time.

An artifact's fingerprint keys the cache of everything downstream, so the
same inputs must give the same fingerprint. ``fs.fingerprint`` hashes bytes,
and two tf.Transform runs on identical inputs write different
``saved_model.pb`` bytes although the graphs compute the same thing. What
differs, found by diffing two such files:

- function names carry a process-wide counter (``__inference_initializer_2712``
  in one process, ``..._7012`` in another), and so does the order in which
  functions are listed;
- the order of the nodes inside a function: graph construction iterates
  Python sets of feature names, whose order follows the string hash seed of
  the process (two runs with one ``PYTHONHASHSEED`` write identical files).
  Nodes refer to each other by name, so their order carries no meaning, and
  their names came out identical in every pair of runs compared;
- ``_user_specified_name`` attributes that TensorFlow fills with such counters;
- the ``shared_name`` of each vocabulary's hash table embeds the path of the
  temporary file tf.Transform's analyzer wrote (``<root>/.tmp/<execution
  id>/tft/tftransform_tmp/<vocabulary>``); the table is filled from the
  SavedModel's own ``assets/`` copy at load time, so the path is only a name;
- ``fingerprint.pb`` holds a random uuid and checksums of the above.

``saved_model_fingerprint`` therefore counts every file of the directory
tree as ``fs.fingerprint`` does (on an object store: size and the store's
checksum, no download), except that each ``saved_model.pb`` is
replaced by a canonical text of its proto (functions and their nodes sorted,
the counters and temporary paths above normalised) and ``fingerprint.pb`` is left out. Every
constant, op, attribute, asset, variable and signature still counts: a
changed analyzer result (a mean, a vocabulary) changes the fingerprint.
TensorFlow is imported only here, when a SavedModel artifact is fingerprinted.
"""

from __future__ import annotations

import hashlib
import os
import re

from beam_ml import fs

_SAVED_MODEL = "saved_model.pb"
_TF_FINGERPRINT = "fingerprint.pb"

_TEMP_VOCABULARY = re.compile(r"[^\s'\"]*/tftransform_tmp/")
_FUNCTION_COUNTER = re.compile(r"(__inference_\w*?)_\d+\b")
_USER_SPECIFIED_COUNTER = re.compile(r'(key: "_user_specified_name"\s+value \{\s+s: ")\d+(")')


def canonical_saved_model(data: bytes) -> str:
    """The text of a ``saved_model.pb`` with process-specific names normalised and functions sorted."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    model.ParseFromString(data)
    parts: list[str] = []
    for meta_graph in model.meta_graphs:
        functions = meta_graph.graph_def.library.function
        parts.extend(sorted(_canonical_nodes(function, function.node_def) for function in functions))
        del functions[:]
        parts.append(_canonical_nodes(meta_graph.graph_def, meta_graph.graph_def.node))
        del meta_graph.graph_def.node[:]
    parts.append(_normalise(str(model)))
    return "\n".join(parts)


def _canonical_nodes(owner, nodes) -> str:
    """The text of a graph or function: its nodes sorted (then removed from ``owner``), the rest after."""
    texts = sorted(_normalise(str(node)) for node in nodes)
    del nodes[:]
    return "\n".join([*texts, _normalise(str(owner))])


def _normalise(text: str) -> str:
    text = _TEMP_VOCABULARY.sub("tftransform_tmp/", text)
    text = _FUNCTION_COUNTER.sub(r"\1", text)
    return _USER_SPECIFIED_COUNTER.sub(r"\1#\2", text)


def saved_model_fingerprint(uri: str) -> str:
    """Like ``fs.fingerprint`` of a directory, with SavedModel protos in canonical form (see the module doc)."""
    digest = hashlib.sha256()
    base = fs.local_path(uri) if fs.is_local(uri) else uri
    for path in fs.list_files(uri):
        rel = os.path.relpath(path, base) if fs.is_local(uri) else path[len(base) :]
        name = rel.replace("\\", "/").rsplit("/", 1)[-1]
        if name == _TF_FINGERPRINT:
            continue
        digest.update(rel.encode() + b"\0")
        if name == _SAVED_MODEL:
            with fs.open_read(path) as handle:
                digest.update(canonical_saved_model(handle.read()).encode())
        else:
            fs.update_with_file(digest, path)
        digest.update(b"\0")
    return digest.hexdigest()
