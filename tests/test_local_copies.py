"""Local directories for TensorFlow: nothing is copied on a local root; on other filesystems the
artifact is downloaded (once per process) or uploaded through Beam's FileSystems.

Without an object store in this test, the copying route is forced on a local root
(``tensorflow_opens`` → False): the files then travel through ``fs.list_files``,
``fs.open_read`` and ``FileSystems.create`` exactly as they do for s3://.
"""

from __future__ import annotations

import pytest

from beam_ml import local_copies


def tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_tensorflow_opens_local_paths_and_gcs_but_not_s3():
    assert local_copies.tensorflow_opens("/data/model") and local_copies.tensorflow_opens("file:///data/model")
    assert local_copies.tensorflow_opens("gs://bucket/model")
    assert not local_copies.tensorflow_opens("s3://bucket/model")


def test_a_local_uri_is_used_as_it_is(tmp_path):
    assert local_copies.local_copy(f"file://{tmp_path}") == str(tmp_path)
    with local_copies.local_output(str(tmp_path / "out")) as directory:
        assert directory == str(tmp_path / "out")
        (tmp_path / "out" / "f").write_text("x")
    assert (tmp_path / "out" / "f").read_text() == "x"


def test_download_and_upload_keep_relative_paths_and_bytes(tmp_path):
    source = tmp_path / "source"
    (source / "variables").mkdir(parents=True)
    (source / "assets" / "deep").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(bytes(range(256)) * 100)
    (source / "variables" / "variables.index").write_bytes(b"index")
    (source / "assets" / "deep" / "vocab.txt").write_text("a\nb\n")
    local_copies.download(str(source), str(tmp_path / "down"))
    assert tree(tmp_path / "down") == tree(source)
    local_copies.upload(str(tmp_path / "down"), str(tmp_path / "up"))
    assert tree(tmp_path / "up") == tree(source)
    with pytest.raises(FileNotFoundError, match="no files under"):
        local_copies.download(str(tmp_path / "missing"), str(tmp_path / "x"))


def test_copies_are_made_once_and_outputs_uploaded_only_on_success(tmp_path, monkeypatch):
    monkeypatch.setattr(local_copies, "tensorflow_opens", lambda uri: False)
    monkeypatch.setattr(local_copies, "_copies", {})
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"graph")
    copy = local_copies.local_copy(str(tmp_path / "model"))
    assert copy != str(tmp_path / "model") and tree(tmp_path / "model") == tree(type(tmp_path)(copy))
    assert local_copies.local_copy(str(tmp_path / "model")) == copy

    with local_copies.local_output(str(tmp_path / "written")) as directory:
        assert directory != str(tmp_path / "written")
        (type(tmp_path)(directory) / "sub").mkdir()
        (type(tmp_path)(directory) / "sub" / "f.bin").write_bytes(b"\0\1")
    assert tree(tmp_path / "written") == {"sub/f.bin": b"\0\1"}
    with pytest.raises(RuntimeError), local_copies.local_output(str(tmp_path / "failed")) as directory:
        (type(tmp_path)(directory) / "partial").write_text("half")
        raise RuntimeError("the step failed")
    assert not (tmp_path / "failed").exists()
