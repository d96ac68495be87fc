import json
import subprocess
import sys

from cgaccel.cli import main


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "cgaccel", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in ("verilog", "header", "vectors", "run", "bench", "synth"):
        assert name in out


def test_verilog_writes_top_module(tmp_path):
    out = tmp_path / "top.v"
    assert main(["verilog", "--config", "small", "-p", "rows=1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "module cgaccel(" in text
    assert "m_axi__araddr" in text and "s_axil__rdata" in text


def test_bad_override_is_a_clear_error(capsys):
    assert main(["verilog", "-p", "rows=0"]) == 2
    assert "Array rows must be an integer between 1 and 64, not 0" in capsys.readouterr().err


def test_header_json_matches_config(tmp_path):
    out = tmp_path / "h.json"
    assert main(["header", "--config", "small", "-p", "cols=3", "--json", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["config"]["cols"] == 3 and d["config"]["rows"] == 2
    # tiny's parameter tables are derived: max_channels 128 over 3 columns, 64 entries.
    assert d["config"]["param_depth"] is None and d["config"]["param_entries"] == 64
    assert {r["name"] for r in d["registers"]} >= {"ID", "CTRL", "STATUS", "MACS_SKIPPED_LO"}


def test_header_c(tmp_path):
    out = tmp_path / "cgaccel.h"
    assert main(["header", "--out", str(out), "-p", "param_depth=256"]) == 0
    text = out.read_text()
    assert "#define CGACCEL_CFG_ROWS 16" in text
    assert "#define CGACCEL_CFG_COLS 4" in text
    assert "#define CGACCEL_REG_CTRL 0x010u" in text
    assert "#define CGACCEL_CFG_PARAM_DEPTH 256" in text      # an explicit depth
    assert "#define CGACCEL_CFG_PARAM_ENTRIES 256" in text
    # The header must compile as C.
    cc = subprocess.run(["cc", "-fsyntax-only", "-x", "c", str(out)], capture_output=True,
                        text=True)
    assert cc.returncode == 0, cc.stderr


def test_register_docs_are_generated_from_the_map():
    from pathlib import Path

    from cgaccel.header import markdown_registers
    docs = Path(__file__).parent.parent / "docs" / "registers.md"
    assert docs.read_text() == markdown_registers(), "run: cgaccel header --markdown --out " \
        "docs/registers.md"
