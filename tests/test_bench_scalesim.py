"""SCALE-Sim wrapper on one tiny layer (skipped when scalesim is not installed)."""

import json

import pytest

from cgaccel.bench import scalesim as ss
from cgaccel.config import AccelConfig
from cgaccel.model.resnet18 import LayerShape

OK, INFO = ss.available()
needs_scalesim = pytest.mark.skipif(not OK, reason=f"SCALE-Sim unavailable: {INFO}")

CFG = AccelConfig(rows=4, cols=4, max_channels=64, max_dim=32, max_kernel=3, act_depth=256,
                  weight_depth=256, out_depth=256, psum_slots=8)
TINY = LayerShape("tiny", 8, 6, 6, 8, 3, 3, 1, 1)


def folds(shape, cfg):
    return -(-shape.C * shape.R * shape.S // cfg.rows) * -(-shape.K // cfg.cols)


@needs_scalesim
def test_ws_cycles_bounded_by_array_work(tmp_path):
    cyc = ss.scalesim_cycles(TINY, CFG, "ws", workdir=tmp_path)
    # Every ws fold streams all Ho*Wo output pixels through the array at least once, and the
    # array cannot beat its MAC count.
    assert cyc >= folds(TINY, CFG) * TINY.Ho * TINY.Wo
    assert cyc >= TINY.dense_macs // (CFG.rows * CFG.cols)
    assert (tmp_path / "topology.csv").read_text().splitlines()[1].startswith("layer, 8, 8, 3")
    report = tmp_path / "out" / "cgaccel" / "COMPUTE_REPORT.csv"
    assert report.exists()


@needs_scalesim
def test_dataflows_differ_and_bigger_array_is_faster(tmp_path):
    by_df = {df: ss.scalesim_cycles(TINY, CFG, df) for df in ss.DATAFLOWS}
    assert len(set(by_df.values())) > 1
    big = CFG.with_overrides(rows=8, cols=8)
    assert ss.scalesim_cycles(TINY, big, "ws") < by_df["ws"]


@needs_scalesim
def test_cache_reuses_results(tmp_path):
    path = tmp_path / "cache.json"
    cache = ss.ScaleSimCache(path)
    first = cache.cycles(TINY, CFG)
    data = json.loads(path.read_text())
    assert list(data.values()) == [first]
    # A second cache object answers from the file: poison the stored value to prove it.
    key = ss.ScaleSimCache.key(TINY, CFG, "ws")
    path.write_text(json.dumps({key: first + 12345}))
    assert ss.ScaleSimCache(path).cycles(TINY, CFG) == first + 12345
    assert ss.ScaleSimCache.key(TINY, CFG, "os") != key


def test_bad_dataflow():
    with pytest.raises(ValueError, match="dataflow must be one of os, ws, is, not 'xy'"):
        ss.scalesim_cycles(TINY, CFG, "xy")
