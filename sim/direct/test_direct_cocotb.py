"""pytest entries of the direct-host bench: the emitted ``host="mmio"`` top, layers bit-exact
through cocotbext-axi's AXI4-Lite master (``tb_direct.py``)."""

import dataclasses
import json
from pathlib import Path

import pytest

from cgaccel.config import AccelConfig, preset
from cgaccel.model.resnet18 import LayerShape, get_layer
from cgaccel.model.vectors import make_vectors, save_vectors
from cgaccel.rtl import write_verilog
from cgaccel.simulate import run_cocotb
from cgaccel.top import build_top

HERE = Path(__file__).resolve().parent
BUILD = HERE.parents[1] / "build" / "sim" / "direct"

# name: (shape, groups, density, make_vectors kwargs, bench kwargs). ``tiny`` has no CGNet
# gating: dense and FBS layers; GATED (2 columns, mmio) takes the gated ones.
CASES = {
    "l1_3x3_fbs_res_relu": (get_layer("cifar.layer1.0.conv2", 8), 1, 0.0,
                            dict(residual=True, relu=True, fbs_density=0.7),
                            dict(pause="random")),
    "pruned_5x7_dense": (LayerShape("pruned", 5, 5, 6, 7, 3, 3, 1, 1), 1, 0.0,
                         dict(residual=True), dict(pause="none")),
    "s2_multitile": (LayerShape("s2", 6, 7, 6, 8, 3, 3, 2, 1), 1, 0.0, dict(relu=True),
                     dict(pause="bursty", k_tile=2, band_rows=2, double_out=True)),
}
GATED = AccelConfig(rows=2, cols=2, max_channels=32, max_kernel=3, max_dim=16, act_depth=128,
                    weight_depth=128, out_depth=128, psum_slots=4, max_groups=4,
                    axi_data_width=32, out_word=2, deal=False, counter_width=32, host="mmio")
GATED_CASES = {
    "l1_3x3_g2_res_relu": (get_layer("cifar.layer1.0.conv2", 8), 2, 0.3,
                           dict(residual=True, relu=True), dict(pause="random")),
    "s2_g4_multitile": (LayerShape("s2", 8, 7, 6, 8, 3, 3, 2, 1), 4, 0.5, dict(relu=True),
                        dict(pause="none", k_tile=2, band_rows=2, double_out=True)),
}


def make_cases(table, build, seed=0):
    out = []
    for n, (name, (shape, groups, density, vkw, bkw)) in enumerate(table.items()):
        path = build / "vectors" / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_vectors(path, make_vectors(shape, groups, density, seed=seed + n, **vkw))
        out.append(dict(name=name, vectors=str(path), seed=seed + n, **bkw))
    return out


@pytest.mark.parametrize("name,config,table", [("tiny", preset("tiny"), CASES),
                                               ("gated", GATED, GATED_CASES)])
def test_layers_icarus(name, config, table):
    """Every case bit-exact, MAC and gate counters exact, under AXI4-Lite stalls: the ``tiny``
    preset's top (dense and FBS layers), and a gated 2-column direct-host top."""
    build = BUILD / f"{name}_icarus"
    src = write_verilog(build_top(config), "cgaccel", build / "cgaccel.v")
    params = {"config": dataclasses.asdict(config), "cases": make_cases(table, build)}
    run_cocotb([src], "cgaccel", "tb_direct", build, sim="icarus", test_dir=HERE,
               extra_env={"DIRECT_PARAMS": json.dumps(params)})
