"""cocotb bench of the MULT18X18D simulation model (``cgaccel/synth/models/MULT18X18D.v``).

The toplevel (written by ``test_dsp_cocotb.py``) is one MULT18X18D with the register settings
in ``DSP_PARAMS``; ``ce`` / ``rst`` drive CE0-3 / RST0-3 and one clock drives CLK0-3. The
reference below steps the registers of the usage guide cycle by cycle: products of random
operands of every signedness (often at the 18-bit extremes) under random enables and resets
are checked just after each clock edge and, for an asynchronous reset, also mid-cycle.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

PARAMS = json.loads(os.environ["DSP_PARAMS"])
EXTREMES = (0, 1, 0x1FFFF, 0x20000, 0x3FFFF)
REGS = ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")


def setting(reg, what, default):
    return PARAMS.get(f"REG_{reg}_{what}", default)


def clocked(reg):
    return setting(reg, "CLK", "NONE") != "NONE"


def product(ra, rb):
    """{signed, 36-bit product} of two {signed, 18-bit} register words."""
    def value(word):
        x = word & 0x3FFFF
        return x - (1 << 18) if word >> 18 and x >> 17 else x
    signed = (ra >> 18) | (rb >> 18)
    return (signed << 36) | ((value(ra) * value(rb)) & ((1 << 36) - 1))


class Reference:
    def __init__(self):
        self.state = dict.fromkeys(REGS, 0)

    def view(self, ins):
        """Register outputs (or their bypassed inputs) for the current inputs."""
        st = self.state
        ra = st["INPUTA"] if clocked("INPUTA") else (ins["signeda"] << 18) | ins["a"]
        rb = st["INPUTB"] if clocked("INPUTB") else (ins["signedb"] << 18) | ins["b"]
        rc = st["INPUTC"] if clocked("INPUTC") else ins["c"]
        rp = st["PIPELINE"] if clocked("PIPELINE") else product(ra, rb)
        ro = st["OUTPUT"] if clocked("OUTPUT") else rp
        return {"ra": ra, "rb": rb, "rc": rc, "rp": rp, "ro": ro}

    def edge(self, ins):
        v = self.view(ins)
        d = {"INPUTA": (ins["signeda"] << 18) | ins["a"],
             "INPUTB": (ins["signedb"] << 18) | ins["b"], "INPUTC": ins["c"],
             "PIPELINE": product(v["ra"], v["rb"]), "OUTPUT": v["rp"]}
        for reg in REGS:
            if not clocked(reg):
                continue
            rst = ins["rst"] >> int(setting(reg, "RST", "RST0")[-1]) & 1
            ce = ins["ce"] >> int(setting(reg, "CE", "CE0")[-1]) & 1
            if rst:
                self.state[reg] = 0
            elif ce:
                self.state[reg] = d[reg]

    def async_reset(self, ins):
        if PARAMS.get("RESETMODE", "SYNC") != "ASYNC":
            return
        for reg in REGS:
            if clocked(reg) and ins["rst"] >> int(setting(reg, "RST", "RST0")[-1]) & 1:
                self.state[reg] = 0


def check(dut, ref, ins, when):
    v = ref.view(ins)
    got = {"p": int(dut.p.value), "signedp": int(dut.signedp.value),
           "roa": int(dut.roa.value), "rob": int(dut.rob.value), "roc": int(dut.roc.value)}
    want = {"p": v["ro"] & ((1 << 36) - 1), "signedp": v["ro"] >> 36,
            "roa": v["ra"] & 0x3FFFF, "rob": v["rb"] & 0x3FFFF, "roc": v["rc"]}
    assert got == want, f"{when}: inputs {ins}: model {got}, reference {want}"
    return want["p"]


@cocotb.test()
async def products_through_the_registers(dut):
    rng = random.Random(int(os.environ.get("DSP_SEED", "3")))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ref = Reference()
    ins = {"a": 0, "b": 0, "c": 0, "signeda": 0, "signedb": 0, "ce": 0, "rst": 0}
    for name, value in ins.items():
        getattr(dut, name).value = value
    products = set()
    for cycle in range(1500):
        await RisingEdge(dut.clk)
        ref.edge(ins)
        await ReadOnly()
        products.add(check(dut, ref, ins, f"cycle {cycle} after the edge"))
        await FallingEdge(dut.clk)
        ins = {k: (rng.choice(EXTREMES) if rng.random() < 0.3 else rng.getrandbits(18))
               for k in ("a", "b", "c")}
        ins.update(signeda=rng.getrandbits(1), signedb=rng.getrandbits(1),
                   ce=rng.getrandbits(4) | (0xF if rng.random() < 0.5 else 0),
                   rst=rng.getrandbits(4) if rng.random() < 0.1 else 0)
        for name, value in ins.items():
            getattr(dut, name).value = value
        await Timer(1, unit="ns")
        ref.async_reset(ins)
        check(dut, ref, ins, f"cycle {cycle} mid-cycle")
    assert len(products) > 500, f"only {len(products)} distinct products seen"
