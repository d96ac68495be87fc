"""pytest entries of the DMA cocotb benches: emit each engine variant, run its bench.

Each Verilator build of a new design compiles the Verilator runtime (about a minute of CPU on
the reference machine), so the default run builds one variant per engine with Verilator and two
more on Icarus (seconds to build; the Python bench dominates either way); ``-m slow`` adds the
other widths and burst shapes. ``DMA_SIM=icarus`` moves the Verilator entries to Icarus.
"""

import json
import os
from pathlib import Path

import pytest

from cgaccel.dma import ReadDMA, WriteDMA
from cgaccel.rtl import write_verilog
from cgaccel.simulate import run_cocotb

HERE = Path(__file__).resolve().parent
BUILD = HERE.parents[1] / "build" / "sim" / "dma"

# name: (data_width, max_burst, max_outstanding)
VARIANTS = {
    "w64_b16_o4": (64, 16, 4),
    "w32_b16_o2": (32, 16, 2),
    "w128_b8_o3": (128, 8, 3),
    "w64_b1_o1": (64, 1, 1),
}
LARGE_VARIANTS = {
    "w32_b256_o4": (32, 256, 4),
    "w128_b32_o8": (128, 32, 8),
}
ENGINES = {"read": ReadDMA, "write": WriteDMA}

SIM = os.environ.get("DMA_SIM", "verilator")
DEFAULT_RUNS = [("w64_b16_o4", SIM), ("w32_b16_o2", "icarus"), ("w128_b8_o3", "icarus")]
SLOW_RUNS = [(name, SIM) for name in ("w32_b16_o2", "w128_b8_o3", "w64_b1_o1",
                                      *LARGE_VARIANTS)]


def run_bench(kind, name, sim="verilator", seed=1, n_random=16, testcase=None):
    """Emit the ``kind`` engine for variant ``name`` and run ``tb_dma_<kind>`` on it."""
    data_width, max_burst, max_outstanding = {**VARIANTS, **LARGE_VARIANTS}[name]
    params = dict(addr_width=32, data_width=data_width, id_width=4, max_burst=max_burst,
                  max_outstanding=max_outstanding)
    build = BUILD / f"{kind}_{name}_{sim}"
    top = f"{kind}_dma"
    src = write_verilog(ENGINES[kind](**params), top, build / f"{top}.v")
    env = {"DMA_PARAMS": json.dumps(params), "DMA_SEED": str(seed), "DMA_N": str(n_random)}
    run_cocotb([src], top, f"tb_dma_{kind}", build, sim=sim, test_dir=HERE, extra_env=env,
               testcase=testcase or os.environ.get("DMA_TESTCASE"))


@pytest.mark.parametrize("kind", list(ENGINES))
@pytest.mark.parametrize(("name", "sim"), DEFAULT_RUNS)
def test_dma_bench(kind, name, sim):
    run_bench(kind, name, sim)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(ENGINES))
@pytest.mark.parametrize(("name", "sim"), SLOW_RUNS)
def test_dma_bench_slow(kind, name, sim):
    run_bench(kind, name, sim, seed=7, n_random=60)
