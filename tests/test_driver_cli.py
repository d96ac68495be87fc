"""``cgaccel run``: argument errors, the mismatch summary, and one real run in cocotb."""

import importlib.util
import json
import sys

import numpy as np
import pytest

from cgaccel.cli import main
from cgaccel.driver_cli import mismatch_summary
from cgaccel.model.resnet18 import LayerShape
from cgaccel.model.vectors import make_vectors, save_vectors


def has_controller():
    if importlib.util.find_spec("cgaccel.controller") is None:
        return False
    import cgaccel.top  # noqa: F401 - importing it loads the controller if it uses one
    return "cgaccel.controller" in sys.modules


@pytest.fixture
def vectors(tmp_path):
    path = tmp_path / "v.npz"
    vec = make_vectors(LayerShape("t", 4, 4, 4, 4, 3, 3, 1, 1), 2, 0.4, seed=3,
                       residual=True, relu=True)
    save_vectors(path, vec)
    return path, vec


def test_missing_file(tmp_path, capsys):
    assert main(["run", "--config", "small", "--vectors", str(tmp_path / "nope.npz")]) == 2
    assert "cgaccel run: [Errno 2] No such file or directory" in capsys.readouterr().err


def test_unmappable_layer(vectors, capsys):
    path, _ = vectors
    rc = main(["run", "--config", "small", "-p", "weight_depth=16", "--vectors", str(path)])
    assert rc == 2
    assert "must fit the weight bank (16 words)" in capsys.readouterr().err


def test_mismatch_summary():
    want = np.zeros((2, 3, 4), np.int8)
    y = want.copy()
    assert mismatch_summary(y, want) == ""
    y[1, 2, 3] = 7
    y[0, 0, 1] = -1
    assert mismatch_summary(y, want) == ("2 of 24 outputs differ; first: y[0,0,1]=-1 "
                                         "(expected 0), y[1,2,3]=7 (expected 0)")
    assert mismatch_summary(y[0], want) == "y has shape (3, 4), expected (2, 3, 4)"


def test_run_reports_mismatch(vectors, tmp_path, capsys):
    """A vectors file whose expected y is off by one value must fail with a clear summary."""
    path, vec = vectors
    bad = dict(vec)
    bad["y"] = vec["y"].copy()
    bad["y"][1, 2, 3] ^= 1
    bad_path = tmp_path / "bad.npz"
    save_vectors(bad_path, bad)
    out, report = tmp_path / "out.npz", tmp_path / "r.json"
    rc = main(["run", "--config", "small", "--sim", "icarus", "--vectors", str(bad_path),
               "--out", str(out),
               "--json", str(report), "--build-dir", str(tmp_path / "build")])
    err = capsys.readouterr().err
    assert rc == 1
    if has_controller():
        assert "MISMATCH: 1 of 64 outputs differ; first: y[1,2,3]=" in err
        with np.load(out) as f:
            np.testing.assert_array_equal(f["y"], vec["y"])
        r = json.loads(report.read_text())
        assert r["match"] is False and r["counters"]["dram_wr_bytes"] == 64
    else:
        # The top without a controller refuses every layer with a readable error.
        assert "accelerator stopped with error 5 (shape)" in err
