"""The shipped trained CGNet's gated layers on the RTL (``cgaccel.train.rtl_report``).

The fast tests check the cases the report builds (real vectors and their dense variants) against
the golden model; the slow test runs them all on the emitted top in one Verilator build and
checks every ``y`` bit for bit.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from cgaccel.model.layer import gated_conv
from cgaccel.model.vectors import load_vectors
from cgaccel.netfile import load_network
from cgaccel.train.rtl_report import DEFAULT_NET, build_cases, main, run_report

TEST_SET = DEFAULT_NET.parent / "digits_test.npz"


def _gated_names(net):
    return [la["name"] for la in net.layers if la["groups"] > 1]


def test_build_cases_dense_variant_matches_golden(tmp_path):
    net = load_network(DEFAULT_NET)
    rows = build_cases(net, 1, tmp_path, TEST_SET)
    assert [r["layer"] for r in rows] == _gated_names(net)
    for r in rows:
        g = load_vectors(r["gated"]["vectors"])
        d = load_vectors(r["dense"]["vectors"])
        assert int(g["groups"]) > 1 and int(d["groups"]) == 1
        for k in ("x", "w", "bias", "mult", "shift", "res"):
            if k in g:
                np.testing.assert_array_equal(d[k], g[k])
        want = gated_conv(d["x"], d["w"], d["bias"], None, d["mult"], d["shift"],
                          stride=int(d["stride"]), pad=int(d["pad"]), groups=1,
                          relu=bool(d["relu"]), res=d.get("res"))
        np.testing.assert_array_equal(d["y"], want.y)
        np.testing.assert_array_equal(r["dense"]["want"], want.y)
        assert d["gate"].all()
        assert r["density"] == pytest.approx(float(g["gate"].mean()))
        # Real gates are partly closed: the gated layer does less work than the dense one.
        assert 0 < r["density"] < 1 and r["mac_reduction"] > 1


def test_build_cases_rejects_bad_image_count(tmp_path):
    net = load_network(DEFAULT_NET)
    with pytest.raises(ValueError, match=r"images must be an integer between 1 and \d+, not 0"):
        build_cases(net, 0, tmp_path, TEST_SET)


@pytest.mark.slow
def test_rtl_report_one_image_bit_exact(tmp_path, capsys):
    # Own build directory: parallel xdist workers never share a Verilator build.
    out = tmp_path / "report.json"
    build = Path("build") / "sim" / "train_rtl" / "tiny-test"
    assert main(["--images", "1", "--config", "small", "--build-dir", str(build),
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    net = load_network(DEFAULT_NET)
    assert [m["layer"] for m in result["rows"]] == _gated_names(net)
    assert result["cases"] == 2 * len(result["rows"])
    for m in result["rows"]:
        assert m["bit_exact"] is True
        assert 0 < m["gated_busy"] <= m["gated_cycles"]
        assert 0 < m["dense_busy"] <= m["dense_cycles"]
        assert m["speedup"] == pytest.approx(m["dense_cycles"] / m["gated_cycles"])
    assert "every y bit-exact" in capsys.readouterr().out


def test_run_report_rejects_unknown_config():
    with pytest.raises(ValueError, match="Preset must be one of"):
        run_report(DEFAULT_NET, 1, "huge")


def _fake_run_e2e(corrupt):
    """A stand-in for the RTL run that echoes the expected ``y`` (one case corrupted)."""
    def run(config, mode, cases, build_dir, *, sim, out):
        ys, report = {}, {"failures": []}
        for i, c in enumerate(cases):
            y = load_vectors(c["vectors"])["y"].copy()
            if i == corrupt:
                y.flat[0] ^= 1
            ys[f"{c['name']}.y"] = y
            report[c["name"]] = {"counters": {"cycles": 100 + i, "busy": 50 + i,
                                              "macs_skipped": 0}}
        np.savez(out["npz"], **ys)
        Path(out["json"]).write_text(json.dumps(report))
    return run


def test_run_report_fails_loudly_on_mismatch(tmp_path, monkeypatch):
    import cgaccel.driver_cli
    from cgaccel.train.rtl_report import RtlMismatch

    monkeypatch.setattr(cgaccel.driver_cli, "run_e2e", _fake_run_e2e(corrupt=3))
    with pytest.raises(RtlMismatch, match=r"s1_conv2_img0_gated: 1 of \d+ outputs differ"):
        run_report(DEFAULT_NET, 1, "small", build_dir=tmp_path)
    monkeypatch.setattr(cgaccel.driver_cli, "run_e2e", _fake_run_e2e(corrupt=None))
    result = run_report(DEFAULT_NET, 1, "small", build_dir=tmp_path)
    m = result["rows"][0]
    assert (m["dense_cycles"], m["gated_cycles"]) == (100, 101)
    assert m["efficiency"] == pytest.approx(100 / 101 / m["mac_reduction"])
