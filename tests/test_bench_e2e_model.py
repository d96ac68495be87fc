"""The end-to-end model's arithmetic; its agreement with the RTL's CYCLES is checked by the
``sim/e2e`` benches (``check_cycle_models``)."""

import pytest

from cgaccel.bench.e2e_model import FrontEnd, estimate_e2e, load_writes
from cgaccel.commands import Op
from cgaccel.config import AccelConfig, preset
from cgaccel.driver import compile_layer
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape


@pytest.mark.parametrize("inner,item,beat,lanes,want", [
    (5, 8, 16, 2, 3),       # two words per 128-bit beat, two lanes: a write per beat
    (4, 8, 16, 2, 2),
    (1, 4, 16, 1, 1),       # a parameter word
    (36, 2, 8, 1, 36),      # one item per write whatever the beat holds
    (9, 4, 16, 4, 3),       # four lanes, four words per beat: 4 + 4 + 1
    (9, 4, 16, 2, 5),       # two lanes, four words per beat: 2 + 2 + 1
    (3, 8, 8, 4, 3),        # a beat holds one word: lanes do not join beats
])
def test_load_writes(inner, item, beat, lanes, want):
    assert load_writes(inner, item, beat, lanes) == want


def _compiled(cfg, shape, groups):
    args = make_layer(shape, groups, 0.3, seed=1, relu=True)
    ref = gated_conv(**args)
    return compile_layer(cfg, args, double_out=True), ref.gate if groups > 1 else None


def test_timeline_ends_at_cycles_and_rises():
    cfg = preset("small")
    comp, gate = _compiled(cfg, LayerShape("t", 8, 6, 6, 4, 3, 3, 1, 1), 2)
    est = estimate_e2e(cfg, comp, gate, timeline=True)
    assert len(est.timeline) == len(comp.commands) == est.commands
    assert est.timeline[-1] == est.cycles
    assert est.timeline == sorted(est.timeline)
    assert estimate_e2e(cfg, comp, gate).timeline is None


def test_short_transfers_cost_the_dma_gap():
    """A strided 1x1 layer gathers its pixels one word per transfer: each transfer costs its
    beat plus the read DMA's gap, so the gap is paid once per transfer."""
    cfg = AccelConfig(axi_data_width=128, load_lanes=2)
    comp, gate = _compiled(cfg, LayerShape("s", 64, 16, 16, 32, 1, 1, 2, 0), 4)
    acts = [c for c in comp.commands if c.op == Op.LOAD and c.target == 0]
    assert acts and max(c.inner for c in acts) == 1
    base = estimate_e2e(cfg, comp, gate).cycles
    wider = estimate_e2e(cfg, comp, gate, fe=FrontEnd(transfer_gap=4)).cycles
    transfers = sum(c.outer for c in comp.commands if c.op == Op.LOAD)
    # One more cycle of gap costs one cycle per transfer, except where a transfer waits for
    # the engine anyway.
    assert 0.9 * transfers <= wider - base <= transfers


@pytest.mark.parametrize("deal,buf_addr,stride,word,want", [
    (0, 0, 28, 4, 7),       # word-aligned: a word (4 bytes) per read
    (0, 256, 21, 4, 25),    # stride not a multiple of W: bytes
    (0, 2, 28, 4, 25),      # base not a multiple of W: bytes
    (0, 0, 24, 8, 4),       # W = 8
    (0, 0, 28, 1, 25),      # W = 1: bytes
    (1, 0, 7, 4, 13),       # dealt on 2 columns (they divide the beat): rows of 2
])
def test_store_reads_words_rows_or_bytes(deal, buf_addr, stride, word, want):
    from cgaccel.bench.e2e_model import store_reads
    cfg = preset("small").with_overrides(out_word=word)
    assert store_reads(cfg, 25, deal, buf_addr, stride) == want


def test_word_store_is_paced_by_the_write_dma():
    """Word reads fill ``tiny``'s 8-byte beats in two reads: a STORE of 28-byte iterations
    (7 reads, 4-5 beats a write) takes at least ``store_min + beats - 1`` cycles a write, the
    write DMA's pace, so one more cycle of ``store_min`` costs one per write after the
    first; a byte-read STORE (21 reads a write) hides it."""
    cfg = preset("small")
    args = make_layer(LayerShape("d", 8, 14, 14, 16, 1, 1, 2, 0), 4, 0.3, seed=1)
    gate = gated_conv(**args).gate
    comp = compile_layer(cfg, args, double_out=True, split="channel", band_rows=4)

    def store_durations(fe):
        t = estimate_e2e(cfg, comp, gate, fe=fe, timeline=True).timeline
        return {(c.inner, c.outer): t[i] - t[i - 1] for i, c in enumerate(comp.commands)
                if c.op == Op.STORE}
    base = store_durations(FrontEnd())
    slower = store_durations(FrontEnd(store_min=FrontEnd().store_min + 1))
    assert set(base) == {(28, 16), (21, 16)}
    assert slower[28, 16] - base[28, 16] == 15
    assert slower[21, 16] - base[21, 16] <= 1
