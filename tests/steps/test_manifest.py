"""The manifest's input digests, computed in the background while a command imports Beam."""

import hashlib

import pytest

from ikou.pipeline.steps.manifest import BackgroundDigests, file_digest


def test_background_digests_equal_the_files_digests(tmp_path):
    paths = []
    for i, size in enumerate((0, 1, 5 * 1024 * 1024 + 3)):  # empty, tiny, more than one chunk
        p = tmp_path / f"in{i}.dat"
        p.write_bytes(bytes((i * 7 + j) % 251 for j in range(size)))
        paths.append(p)
    got = BackgroundDigests(paths).result()
    want = [(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in paths]
    assert got == want == [file_digest(str(p)) for p in paths]


def test_a_hashing_error_is_raised_by_result(tmp_path):
    bg = BackgroundDigests([tmp_path / "missing.dat"])
    with pytest.raises(FileNotFoundError):
        bg.result()
