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
