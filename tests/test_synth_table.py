"""The table of flow runs (cgaccel.synth.table)."""

import json

import pytest

from cgaccel.config import preset
from cgaccel.synth.table import SUMMARY_COLUMNS, collect, format_table, main, seed_summary


def _write(path, rep):
    path.mkdir(parents=True)
    (path / "report.json").write_text(json.dumps(rep))


def _report(**kw):
    rep = {"target": "ecp5-85k", "top": "block", "design": "Top",
           "config": preset("default").to_dict(), "freq_target_mhz": 100.0, "fmax_mhz": 73.84,
           "routed": True, "timing_met": False, "luts": 32780, "ffs": 19969, "dsps": 80,
           "brams": 104, "util_pct": {"luts": 39.2, "ffs": 23.9, "dsps": 51.3, "brams": 50.0},
           "seed": 2, "seconds": 903.4, "files": {"bitstream": "x.bit"}}
    rep.update(kw)
    return rep


def test_every_run_is_a_row(tmp_path):
    _write(tmp_path / "ecp5-85k" / "block", _report())
    _write(tmp_path / "ecp5-85k" / "board", _report(
        top="board", design="BoardTop", board="ulx3s-85f", dram="ram", freq_target_mhz=50.0,
        fmax_mhz=59.13, timing_met=True, config=preset("small").to_dict(), seed=1))
    _write(tmp_path / "ice40-up5k" / "block", {
        "target": "ice40-up5k", "top": "block", "design": "Top",
        "config": preset("small").with_overrides(rows=4).to_dict(), "freq_target_mhz": 12.0,
        "synth_estimate": {"luts": 21868, "ffs": 10972, "dsps": 12, "brams": 87},
        "seconds": 61.0, "files": {"bitstream": None}})
    _write(tmp_path / "ecp5-85k" / "column", _report(
        design="Column", routed=False, fmax_mhz=80.5, files={"bitstream": None}))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "report.json").write_text('{"not": "a flow report"}')
    rows = collect(tmp_path)
    assert [r["dir"] for r in rows] == ["ecp5-85k/block", "ecp5-85k/board", "ecp5-85k/column",
                                        "ice40-up5k/block"]
    block, board, column, up5k = rows
    assert (block["config"], block["top"], block["Fmax MHz"], block["met"], block["LUTs"],
            block["seed"], block["seconds"], block["bitstream"]) == (
        "default", "block", "73.84", "no", "32780 (39.2%)", "2", "903", "yes")
    assert (board["config"], board["top"], board["clock MHz"], board["met"]) == (
        "small", "board ulx3s-85f ram", "50", "yes")
    assert (column["top"], column["Fmax MHz"], column["bitstream"]) == (
        "block Column", "80.5 (placed)", "no")
    assert (up5k["config"], up5k["Fmax MHz"], up5k["met"], up5k["LUTs"]) == (
        "custom", "synthesis only", "-", "(21868)")
    text = format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + 4 and len({len(line) for line in lines}) == 1
    assert lines[0].startswith("| dir ") and "| 73.84 " in lines[2]


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 1
    assert "Directory must exist, not" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 1
    assert "no report.json under" in capsys.readouterr().err
    _write(tmp_path / "run", _report())
    assert main([str(tmp_path)]) == 0
    assert "| run " in capsys.readouterr().out
    (tmp_path / "run" / "report.json").write_text("{")
    assert main([str(tmp_path)]) == 1
    assert "Report must be JSON, not" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["small", "default"])
def test_presets_are_named(tmp_path, name):
    _write(tmp_path / "r", _report(config=preset(name).to_dict()))
    assert collect(tmp_path)[0]["config"] == name


def test_seed_summary_groups_routed_runs_of_one_design(tmp_path):
    """Several seeds of a block (``make synth-blocks SEEDS=...``): one summary row each with
    the Fmax over its routed runs; a grade-8 run, a design run once and an unrouted run are
    not folded into it."""
    root = tmp_path / "blocks-6"
    for seed, fmax in ((1, 111.2), (2, 112.2), (3, 114.4), (4, 122.31)):
        _write(root / "controller" / f"seed{seed}", _report(
            design="Controller", fmax_mhz=fmax, seed=seed, speed_grade=6))
    _write(root / "controller" / "seed5", _report(
        design="Controller", fmax_mhz=99.0, seed=5, routed=False))
    _write(root / "controller" / "g8", _report(
        design="Controller", fmax_mhz=152.25, seed=1, speed_grade=8))
    _write(root / "controller" / "small", _report(
        design="Controller", fmax_mhz=130.0, seed=1, config=preset("small").to_dict()))
    for seed, fmax in ((1, 157.21), (2, 152.58)):
        _write(root / "regfile" / f"seed{seed}", _report(
            design="RegisterFile", fmax_mhz=fmax, seed=seed))
    _write(root / "column" / "seed1", _report(design="Column", fmax_mhz=99.44, seed=1))
    rows = seed_summary(root)
    assert [(r["design"], r["routed runs"], r["seeds"], r["Fmax mean"], r["Fmax min"],
             r["Fmax max"]) for r in rows] == [
        ("block Controller", "4", "1,2,3,4", "115.03", "111.2", "122.31"),
        ("block RegisterFile", "2", "1,2", "154.90", "152.58", "157.21")]
    assert {r["target"] for r in rows} == {"ecp5-85k"} and rows[0]["config"] == "default"
    text = format_table(rows, SUMMARY_COLUMNS)
    assert text.splitlines()[0].startswith("| design ") and "| 115.03 " in text


def test_cli_prints_the_summary_only_for_repeated_runs(tmp_path, capsys):
    _write(tmp_path / "a" / "seed1", _report(seed=1, fmax_mhz=90.0))
    assert main([str(tmp_path)]) == 0
    assert "Over seeds" not in capsys.readouterr().out
    _write(tmp_path / "a" / "seed2", _report(seed=2, fmax_mhz=95.0))
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Over seeds" in out and "| 92.50 " in out and "| a/seed2 " in out
