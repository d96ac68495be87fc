"""pytest entry of the register file cocotb bench (``tb_regfile.py``)."""

import dataclasses
import json
from pathlib import Path

import pytest

from cgaccel.config import preset
from cgaccel.regfile import ADDR_WIDTH, RegFile
from cgaccel.regs import hwcfg_values, register_map
from cgaccel.rtl import write_verilog
from cgaccel.simulate import run_cocotb

HERE = Path(__file__).resolve().parent
BUILD = HERE.parents[1] / "build" / "sim" / "regfile"


def run_bench(sim):
    constants = hwcfg_values(preset("default"))
    spec = {
        "addr_width": ADDR_WIDTH,
        "constants": constants,
        "regs": [{k: v for k, v in dataclasses.asdict(r).items() if k != "fields"}
                 for r in register_map()],
    }
    build = BUILD / sim
    src = write_verilog(RegFile(constants), "regfile", build / "regfile.v")
    run_cocotb([src], "regfile", "tb_regfile", build, sim=sim, test_dir=HERE,
               extra_env={"REGFILE_MAP": json.dumps(spec)})


def test_regfile_icarus():
    run_bench("icarus")


@pytest.mark.slow
def test_regfile_verilator():
    run_bench("verilator")
