"""Per-module resource breakdown (cgaccel.synth.breakdown) on real yosys output.

A small block with a known structure (a block RAM with a clocked read port, a FIFO whose memory
reads asynchronously, a memory with two write ports, one multiplier, two levels of hierarchy)
is broken down on the iCE40 with yosys's own LUT mapping (~15 s); the whole small top is
``slow``.
"""

import json

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cgaccel.config import preset
from cgaccel.synth import breakdown as bd


class _Child(wiring.Component):
    a: In(8)
    b: In(8)
    prod: Out(16)
    addr: In(8)
    w_en: In(1)
    rd: Out(16)
    addr2: In(4)
    rd2: Out(8)
    rom: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = Memory(shape=16, depth=256, init=[])
        wp = ram.write_port()
        rp = ram.read_port()
        m.submodules.two = two = Memory(shape=8, depth=16, init=[])
        wa, wb = two.write_port(), two.write_port()
        r2 = two.read_port()
        m.d.comb += [
            wp.addr.eq(self.addr), wp.data.eq(self.a * 3), wp.en.eq(self.w_en),
            rp.addr.eq(self.addr), self.rd.eq(rp.data),
            wa.addr.eq(self.addr2), wa.data.eq(self.a), wa.en.eq(self.w_en),
            wb.addr.eq(~self.addr2), wb.data.eq(self.b), wb.en.eq(self.w_en),
            r2.addr.eq(self.addr2), self.rd2.eq(r2.data),
        ]
        m.d.sync += self.prod.eq(self.a.as_signed() * self.b.as_signed())
        # A constant table: yosys turns the Switch into a ROM (proc_rom), made of LUTs.
        with m.Switch(self.addr2):
            for i in range(16):
                with m.Case(i):
                    m.d.comb += self.rom.eq((i * 37 + 11) % 256)
        return m


class _Block(wiring.Component):
    a: In(8)
    b: In(8)
    addr: In(8)
    w_en: In(1)
    r_en: In(1)
    out: Out(16)
    rd: Out(16)
    fifo_out: Out(8)
    rd2: Out(8)
    rom: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.child = child = _Child()
        m.submodules.fifo = fifo = SyncFIFO(width=8, depth=4)
        m.d.comb += [
            child.a.eq(self.a), child.b.eq(self.b), child.addr.eq(self.addr),
            child.w_en.eq(self.w_en), child.addr2.eq(self.addr[:4]),
            self.out.eq(child.prod), self.rd.eq(child.rd), self.rd2.eq(child.rd2),
            self.rom.eq(child.rom),
            fifo.w_data.eq(self.a), fifo.w_en.eq(self.w_en), fifo.r_en.eq(self.r_en),
            self.fifo_out.eq(fifo.r_data),
        ]
        return m


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("breakdown")
    return bd.breakdown(preset("small"), "ice40-up5k", out, design=_Block(), module="blk",
                        dsp=False, noabc=True), out


def test_modules_and_totals(report):
    rep, out = report
    names = [(m["name"], m["depth"]) for m in rep["modules"]]
    assert names == [("blk", 0), ("blk.child", 1), ("blk.fifo", 1)]
    by = {m["name"]: m for m in rep["modules"]}
    # The 16 x 256 memory with a clocked read is one SB_RAM40_4K, in the child.
    assert by["blk.child"]["own"]["brams"] == 1
    assert by["blk.fifo"]["own"]["brams"] == 0
    assert by["blk"]["own"]["brams"] == 0
    for col in ("luts", "carries", "ffs", "dsps", "brams", "sprams"):
        assert by["blk"]["total"][col] == sum(by[n]["own"][col] for n in by), col
    # The FIFO's 4 x 8 storage is flip-flops, plus its pointers and level.
    assert by["blk.fifo"]["own"]["ffs"] >= 32
    # The two-write-port memory (8 x 16) and the product register are flip-flops too.
    assert by["blk.child"]["own"]["ffs"] >= 8 * 16 + 16
    assert by["blk.child"]["own"]["luts"] > 0
    assert rep["modules"][0]["total"]["dsps"] == 0
    on_disk = json.loads((out / "breakdown.json").read_text())
    assert on_disk["modules"] == rep["modules"]


def test_memories(report):
    rep, _ = report
    mems = {(m["module"], m["name"]): m for m in rep["memories"]}
    roms = [m for m in rep["memories"] if m["wr_ports"] == 0]
    assert len(roms) == 1
    rom = roms[0]
    assert rom["module"] == "blk.child" and rom["name"].startswith("$auto$proc_rom")
    assert (rom["width"], rom["depth"], rom["mapped"]) == (8, 16, "logic")
    assert "ROM" in rom["why"]
    assert rom["src"].startswith("blk.v:") and rom["src"].endswith("(drives rom)")
    assert set(mems) - {(rom["module"], rom["name"])} == {
        ("blk.child", "ram"), ("blk.child", "two"), ("blk.fifo", "storage")}
    ram = mems[("blk.child", "ram")]
    assert (ram["width"], ram["depth"], ram["rd_sync"], ram["wr_ports"]) == (16, 256, [True], 1)
    assert ram["mapped"] == "bram" and "why" not in ram
    assert ram["src"].startswith("tests/test_synth_breakdown.py:")
    fifo = mems[("blk.fifo", "storage")]
    assert (fifo["width"], fifo["depth"], fifo["rd_sync"]) == (8, 4, [False])
    assert fifo["mapped"] == "ff"
    assert fifo["src"].startswith("amaranth/lib/fifo.py:")
    assert fifo["why"] == "1 asynchronous (comb) read port"
    two = mems[("blk.child", "two")]
    assert two["mapped"] == "ff" and two["wr_ports"] == 2
    assert "2 write ports" in two["why"]


def test_multipliers(report):
    rep, _ = report
    # a * 3 stays a $mul after wreduce (8 x 2 bits), flagged as a multiply by a constant.
    assert sorted((m["module"], m["a_width"], m["b_width"], m["y_width"], m["signed"],
                   m["constant"]) for m in rep["multipliers"]) == [
        ("blk.child", 8, 2, 10, False, True), ("blk.child", 8, 8, 16, True, False)]
    assert all(m["src"].startswith("tests/test_synth_breakdown.py:")
               for m in rep["multipliers"])


def test_wide_registers(report):
    rep, _ = report
    # No register of the block is above 32 bits; the product register is 16.
    assert rep["wide_registers"] == []
    narrow = bd.wide_registers(json.loads((report[1] / "pre.json").read_text()), min_width=16,
                               src_root=str(bd.Path(bd.__file__).resolve().parents[2]))
    assert [(r["module"], r["name"], r["width"]) for r in narrow] == [("blk.child", "prod", 16)]
    assert narrow[0]["src"].startswith("tests/test_synth_breakdown.py:")


def test_format_tables(report):
    rep, _ = report
    text = bd.format_tables(rep)
    assert "  blk.child" in text
    assert "blk.fifo.storage: 8 x 4 = 32 bits, rd a, wr 1: ff (1 asynchronous" in text
    assert "blk.child: 8 x 8 -> 16 signed  [tests/" in text
    assert "blk.child: 8 x 2 -> 10 unsigned by a constant  [tests/" in text


def test_memory_mapping_log_lines():
    log = ("mapping memory top.a.mem via $__ICE40_RAM4K_\n"
           "using FF mapping for memory top.b.storage\n"
           "mapping memory top.c.big via $__ICE40_SPRAM_\n")
    assert bd.memory_mapping(log) == {"top.a.mem": "$__ICE40_RAM4K_", "top.b.storage": "ff",
                                      "top.c.big": "$__ICE40_SPRAM_"}


def test_invalid_arguments(tmp_path):
    with pytest.raises(TypeError, match="Config must be an AccelConfig, not 3"):
        bd.breakdown(3, "ice40-up5k", tmp_path)
    with pytest.raises(ValueError, match="Target must be one of"):
        bd.breakdown(preset("small"), "xc7", tmp_path)
    with pytest.raises(TypeError, match="Design must be a wiring.Component, not 'x'"):
        bd.breakdown(preset("small"), "ice40-up5k", tmp_path, design="x")
    with pytest.raises(ValueError, match="Module must be a Verilog identifier, not 'a.b'"):
        bd.breakdown(preset("small"), "ice40-up5k", tmp_path, module="a.b")
    with pytest.raises(ValueError, match="Family must be ecp5 or ice40, not 'xc7'"):
        bd.module_resources("xc7", {"modules": {}})
    with pytest.raises(ValueError, match="Top module must be one of the synthesized modules"):
        bd.hierarchy_totals({}, "top")


@pytest.mark.slow
def test_small_top_breakdown(tmp_path):
    rep = bd.breakdown(preset("small"), "ice40-up5k", tmp_path, noabc=True)
    names = {m["name"] for m in rep["modules"]}
    assert {"cgaccel", "cgaccel.engine", "cgaccel.controller", "cgaccel.rdma", "cgaccel.wdma",
            "cgaccel.regs"} <= names
    assert rep["modules"][0]["total"]["brams"] > 0
    # Every RAM is mapped; yosys's ROMs from the register file's Switch statements (constant
    # tables, no write port) become logic and have no mapped cell.
    rams = [m for m in rep["memories"] if m["wr_ports"]]
    assert rams and all(m["mapped"] is not None for m in rams)
    assert all("ROM" in m["why"] for m in rep["memories"] if m["mapped"] is None)


@pytest.mark.parametrize("switch, ffs, luts", [("cgnet", 0.9, 0.95), ("deal", 0.99, 0.96)])
def test_a_column_without_a_feature_is_smaller(tmp_path, switch, ffs, luts):
    # cgnet=False / deal=False: the engine refuses gated / dealt tiles, and the column's
    # descriptor says so with a constant, so synthesis drops the slots, the conditional queue
    # and the gate decision / the dealt walk.
    from cgaccel.engine.column import Column
    cfg = preset("small").with_overrides(cols=1, rows=2, max_groups=2, psum_slots=4,
                                        max_channels=32, max_dim=16, fbs=False)
    total = {}
    for on in (True, False):
        c = cfg.with_overrides(**{switch: on})
        rep = bd.breakdown(c, "ice40-up5k", tmp_path / str(on), design=Column(c, 0),
                           module="col", dsp=False, noabc=True)
        total[on] = rep["modules"][0]["total"]
    assert total[False]["ffs"] < ffs * total[True]["ffs"], total
    assert total[False]["luts"] < luts * total[True]["luts"], total
