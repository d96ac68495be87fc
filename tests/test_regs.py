from cgaccel.config import preset
from cgaccel.regs import ERRORS, hwcfg_values, register_map


def test_map_is_word_aligned_and_unique():
    regs = register_map()
    offsets = [r.offset for r in regs]
    assert all(o % 4 == 0 for o in offsets)
    assert len(set(offsets)) == len(offsets)
    assert len({r.name for r in regs}) == len(regs)
    assert max(offsets) < 1 << 12


def test_fields_fit_and_do_not_overlap():
    for r in register_map():
        used = 0
        for f in r.fields:
            mask = ((1 << f.width) - 1) << f.lsb
            assert f.lsb + f.width <= 32, (r.name, f.name)
            assert not used & mask, (r.name, f.name)
            used |= mask


def test_hwcfg_encodes_config():
    cfg = preset("default").with_overrides(rows=5, cols=7)
    hw0 = hwcfg_values(cfg)["HWCFG0"]
    assert hw0 & 0xFF == 5 and (hw0 >> 8) & 0xFF == 7
    assert ERRORS["none"] == 0 and len(set(ERRORS.values())) == len(ERRORS)


def test_hwcfg_counter_short_reads_zero_for_64_bit_counters():
    # Zero for 64 bits: hardware from before the field reads as what it is.
    cfg = preset("default")
    assert hwcfg_values(cfg)["HWCFG1"] >> 26 == 0
    assert hwcfg_values(cfg.with_overrides(counter_width=32))["HWCFG1"] >> 26 == 32
    assert hwcfg_values(cfg.with_overrides(counter_width=48))["HWCFG1"] >> 26 == 16
