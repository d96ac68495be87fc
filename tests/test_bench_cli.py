"""``cgaccel bench``: options, JSON records, table and plot (model-only and a tiny RTL run)."""

import json

import pytest

from cgaccel.bench.cli import format_table
from cgaccel.bench.network import RECORD_KEYS, executed_macs, select_layers
from cgaccel.cli import main
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape


def run_bench(tmp_path, *extra):
    out = tmp_path / "bench.json"
    rc = main(["bench", *extra, "--json", str(out), "--build-dir", str(tmp_path / "b")])
    assert rc == 0
    return json.loads(out.read_text())


def test_model_only_json_keys(tmp_path, capsys):
    recs = run_bench(tmp_path, "--model-only", "--no-scalesim", "--geometry", "cifar",
                     "--layers", "layer2.0.downsample", "layer4.0.conv2", "--scale", "8")
    assert [r["layer"] for r in recs] == ["cifar.layer2.0.downsample/s8",
                                          "cifar.layer4.0.conv2/s8"]
    for r in recs:
        assert set(RECORD_KEYS) <= set(r)
        assert r["source"] == "model"
        assert r["model_error_pct"] is None
        assert r["scalesim_dense_cycles"] is None
        assert r["dense_cycles"] > 0 and r["gated_cycles"] > 0
        assert r["speedup"] == pytest.approx(r["dense_cycles"] / r["gated_cycles"])
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["mac_reduction"])
        assert 0 < r["utilization"] <= 1
        assert r["dram_bytes_gated"] >= r["dram_bytes_dense"] > 0
        assert r["total_speedup"] == pytest.approx(r["dense_total_cycles"]
                                                   / r["gated_total_cycles"])
        assert r["total_efficiency"] == pytest.approx(r["total_speedup"] / r["mac_reduction"])
        # The bus floor is a lower bound of the modelled start-to-done cycles.
        for name in ("dense", "gated"):
            bound = r["dram_bound_cycles"][name]
            assert bound * 16 >= r[f"dram_bytes_{name}"] > (bound - 1) * 16
            assert r["model"][name]["e2e_cycles"] >= bound
    text = capsys.readouterr().out
    assert "cifar.layer4.0.conv2/s8" in text and "model" in text


def _executed_macs_by_loops(args, gate):
    """Independent count: walk every output, tap and input channel; count the MACs whose
    input pixel is inside the image and whose channel the gate lets through."""
    C, H, W = args["x"].shape
    K, _, R, S = args["w"].shape
    st, pad, G = args["stride"], args["pad"], args["groups"]
    Ho, Wo = gate.shape[1:]
    n = 0
    for k in range(K):
        base = range((k // (K // G)) * (C // G), (k // (K // G) + 1) * (C // G))
        for oy in range(Ho):
            for ox in range(Wo):
                for r in range(R):
                    for s_ in range(S):
                        iy, ix = oy * st - pad + r, ox * st - pad + s_
                        if 0 <= iy < H and 0 <= ix < W:
                            n += C if G == 1 or gate[k, oy, ox] else len(base)
    return n


@pytest.mark.parametrize("groups,stride,pad", [(1, 1, 1), (4, 1, 1), (2, 2, 1), (4, 1, 0)])
def test_executed_macs_match_nested_loops(groups, stride, pad):
    shape = LayerShape("t", 8, 5, 6, 4, 3, 3, stride, pad)
    args = make_layer(shape, groups, 0.4, seed=groups)
    ref = gated_conv(**args)
    assert executed_macs(args, ref.gate) == _executed_macs_by_loops(args, ref.gate)
    if pad:   # padding taps make the golden count larger
        assert executed_macs(args, ref.gate) < ref.stats.executed


def test_rtl_rows_are_measured_and_model_within_5pct(tmp_path):
    recs = run_bench(tmp_path, "--config", "small", "--rtl-path", "engine", "--simulator",
                     "amaranth", "--no-scalesim",
                     "--geometry", "cifar", "--layers", "layer4.0.downsample", "--scale", "16")
    (r,) = recs
    assert r["source"] == "rtl"
    assert r["rtl_seconds"] is not None
    assert set(r["model_errors_pct"]) == {"dense_compute", "dense_total", "gated_compute",
                                          "gated_total"}
    assert abs(r["model_error_pct"]) <= 5.0
    assert "measurement cache" not in r["note"]
    # The same layer on the same RTL again: answered from the verified-measurement cache.
    (again,) = run_bench(tmp_path, "--config", "small", "--rtl-path", "engine",
                         "--simulator", "amaranth", "--no-scalesim", "--geometry", "cifar",
                         "--layers", "layer4.0.downsample", "--scale", "16")
    assert "measurement cache" in again["note"]
    assert {k: again[k] for k in RECORD_KEYS} == {k: r[k] for k in RECORD_KEYS}


def test_rtl_budget_falls_back_to_model(tmp_path):
    (r,) = run_bench(tmp_path, "--config", "small", "--rtl-path", "engine", "--simulator",
                     "amaranth", "--no-scalesim",
                     "--geometry", "cifar", "--layers", "layer4.0.downsample", "--scale", "16",
                     "--max-rtl-cycles", "10")
    assert r["source"] == "model"
    assert "RTL skipped" in r["note"]


def test_unmappable_layer_is_reported_or_scaled(tmp_path):
    # One channel's weights (9 taps x 16 words of 16 rows) do not fit a 128-word weight bank.
    args = ("--model-only", "--no-scalesim", "--geometry", "imagenet", "--layers",
            "layer3.0.conv2", "-p", "weight_depth=128")
    (r,) = run_bench(tmp_path, *args, "--fallback-scale", "1")
    assert r["source"] == "none"
    assert "not mappable" in r["note"]
    assert all(r[k] is None for k in RECORD_KEYS if k not in ("layer", "source"))
    (r,) = run_bench(tmp_path, *args)
    assert r["layer"] == "imagenet.layer3.0.conv2/s2"
    assert r["source"] == "model" and r["dense_cycles"] > 0
    assert "not mappable at this size" in r["note"] and "scaled by 2" in r["note"]


def test_identical_shapes_are_measured_once(tmp_path):
    a, b = run_bench(tmp_path, "--model-only", "--no-scalesim", "--geometry", "cifar",
                     "--layers", "layer3.0.conv2", "layer3.1.conv1", "--scale", "8")
    assert "figures reused" in b["note"] and "figures reused" not in a["note"]
    assert {k: a[k] for k in RECORD_KEYS if k != "layer"} == \
        {k: b[k] for k in RECORD_KEYS if k != "layer"}


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "speedup.png"
    run_bench(tmp_path, "--model-only", "--no-scalesim", "--geometry", "cifar", "--layers",
              "layer3.0.conv2", "--scale", "8", "--plot", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options(capsys):
    assert main(["bench", "--scale", "0"]) == 2
    assert "--scale must be at least 1, not 0" in capsys.readouterr().err
    assert main(["bench", "--density", "1.5"]) == 2
    assert "--density must be between 0 and 1, not 1.5" in capsys.readouterr().err
    assert main(["bench", "--geometry", "cifar", "--layers", "conv9"]) == 2
    assert "layer must be one of conv1, " in capsys.readouterr().err


def test_select_layers_and_table():
    shapes = select_layers("cifar")
    assert len(shapes) == 20
    assert select_layers("cifar", ["conv1"], 2)[0].name == "cifar.conv1/s2"
    rec = {k: None for k in RECORD_KEYS}
    rec.update(layer="x", source="model", dense_cycles=10, note="hello")
    table = format_table([rec])
    assert "x" in table.splitlines()[1] and "hello" in table


@pytest.mark.slow
def test_end_to_end_rows(tmp_path):
    from cgaccel.bench.cli import e2e_status
    ok, why = e2e_status()
    if not ok:
        pytest.skip(f"end-to-end top not available: {why}")
    (r,) = run_bench(tmp_path, "--config", "small", "--rtl-path", "e2e", "--no-scalesim",
                     "--geometry", "cifar", "--layers", "layer4.0.downsample", "--scale", "16")
    assert r["source"] == "rtl" and r["rtl_path"] == "e2e"
    assert set(r["model_errors_pct"]) == {"dense_compute", "gated_compute", "dense_total",
                                          "gated_total"}
    assert r["model_errors_pct"]["dense_compute"] == r["model_errors_pct"]["gated_compute"] == 0
    assert abs(r["model_error_pct"]) <= 5.0
    assert r["dense_total_cycles"] > r["dense_cycles"]
