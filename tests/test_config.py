import dataclasses
import json

import pytest

from cgaccel.config import PRESETS, AccelConfig, parse_overrides, preset


def test_presets_are_valid_and_ordered_by_size():
    sizes = [PRESETS[n].macs for n in ("tiny", "small", "default", "large")]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert PRESETS["large"].rows >= 16 and PRESETS["large"].cols >= 16


def test_derived_sizes():
    c = AccelConfig(rows=4, cols=2, axi_data_width=128)
    assert c.macs == 8
    assert c.act_word_width == 32
    assert c.axi_bytes == 16
    assert c.channel_bits == (512).bit_length()
    assert c.onchip_bytes == 2 * (2 * 1024 * 4 + 2 * 1024 * 4 + 2048)


def test_param_depth():
    # None: what a channel-split column owns of a max_channels layer (rounded up, at least 2).
    assert AccelConfig().param_entries == AccelConfig().min_param_depth == 64
    assert AccelConfig(cols=3, max_channels=100).param_entries == 64
    assert AccelConfig(cols=8, max_channels=8).param_entries == 2
    assert preset("small").param_entries == 64 and preset("large").param_entries == 32
    # default: 4 columns own 128 channels each.
    assert preset("default").param_entries == preset("default").min_param_depth == 128
    # 8 columns with 128 entries (one DP16KD per table on ECP5, as with 64).
    eight = AccelConfig(axi_data_width=128, load_lanes=2, param_depth=128)
    assert eight.param_depth == eight.param_entries == 128
    assert AccelConfig(param_depth=512).param_entries == 512
    # A derived depth follows max_channels in a variant; an explicit one is kept.
    assert preset("small").with_overrides(max_channels=64).param_entries == 32
    assert preset("default").with_overrides(max_channels=1024).param_entries == 256
    assert eight.with_overrides(max_channels=1024).param_entries == 128
    d = eight.to_dict()
    assert d["param_depth"] == d["param_entries"] == 128
    d = preset("small").to_dict()
    assert d["param_depth"] is None and d["param_entries"] == 64


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AccelConfig().rows = 3


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"rows": 0}, ValueError, r"^Array rows must be an integer between 1 and 64, not 0$"),
    ({"cols": 65}, ValueError, r"^Array cols must be an integer between 1 and 64, not 65$"),
    ({"rows": 2.0}, TypeError, r"^Array rows must be an integer, not 2.0$"),
    ({"rows": True}, TypeError, r"^Array rows must be an integer, not True$"),
    ({"act_depth": 1000}, ValueError,
     r"^Activation buffer depth must be a power of two, not 1000$"),
    ({"axi_data_width": 48}, ValueError, r"^AXI data width must be a power of two, not 48$"),
    ({"axi_data_width": 16}, ValueError,
     r"^AXI data width must be an integer between 32 and 1024, not 16$"),
    ({"acc_width": 12}, ValueError,
     r"^Accumulator width must be at least act_width \+ weight_width \(16\), not 12$"),
    ({"max_burst": 256, "axi_data_width": 256}, ValueError,
     r"^Max burst must fit in 4 KiB \(128 beats at 256 bits\), not 256$"),
    ({"max_outstanding": 32, "axi_id_width": 4}, ValueError,
     r"^Max outstanding reads must be an integer between 1 and 16, not 32$"),
    ({"cgnet": 1}, TypeError, r"^CGNet gating must be a bool, not 1$"),
    ({"fbs": "yes"}, TypeError, r"^FBS channel skipping must be a bool, not 'yes'$"),
    ({"deal": 0}, TypeError, r"^Dealt pixels must be a bool, not 0$"),
    # max_channels 512 on 8 columns: a column owns 64 channels of a channel-split tile.
    ({"param_depth": 32}, ValueError,
     r"^Parameter table depth must be an integer between 64 and 512, not 32$"),
    ({"param_depth": 1024}, ValueError,
     r"^Parameter table depth must be an integer between 64 and 512, not 1024$"),
    ({"param_depth": 96}, ValueError, r"^Parameter table depth must be a power of two, not 96$"),
    ({"out_word": 3}, ValueError, r"^Output word must be a power of two, not 3$"),
    ({"out_word": 0}, ValueError, r"^Output word must be an integer between 1 and 8, not 0$"),
    # The word must divide the AXI beat (here 4 bytes) and half the output bank (8 entries).
    ({"out_word": 8, "axi_data_width": 32}, ValueError,
     r"^Output word must be an integer between 1 and 4, not 8$"),
    ({"out_word": 16, "out_depth": 16, "axi_data_width": 256}, ValueError,
     r"^Output word must be an integer between 1 and 8, not 16$"),
    ({"out_word": 4.0}, TypeError, r"^Output word must be an integer, not 4.0$"),
    ({"param_depth": 128.0}, TypeError, r"^Parameter table depth must be an integer, not 128.0$"),
    ({"param_depth": True}, TypeError, r"^Parameter table depth must be an integer, not True$"),
    ({"param_depth": 8, "cols": 2, "max_channels": 100}, ValueError,
     r"^Parameter table depth must be an integer between 64 and 128, not 8$"),
    ({"counter_width": 16}, ValueError,
     r"^Counter width must be an integer between 32 and 64, not 16$"),
    ({"counter_width": 65}, ValueError,
     r"^Counter width must be an integer between 32 and 64, not 65$"),
])
def test_invalid_values_are_rejected(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        AccelConfig(**kwargs)


def test_overrides_are_checked():
    assert preset("small").with_overrides(rows=4).rows == 4
    with pytest.raises(ValueError, match=r"^Config parameter must be one of .*, not 'rowz'$"):
        preset("default").with_overrides(rowz=4)
    with pytest.raises(ValueError,
                       match=r"^Preset must be one of tiny, small, default, large, not 'huge'$"):
        preset("huge")


def test_parse_overrides():
    assert parse_overrides(["rows=4", "fbs=false", "cgnet=True", "axi_data_width=0x80"]) == {
        "rows": 4, "fbs": False, "cgnet": True, "axi_data_width": 128}
    assert parse_overrides(["param_depth=None"]) == {"param_depth": None}
    with pytest.raises(ValueError, match=r"^Override must be key=value, not 'rows'$"):
        parse_overrides(["rows"])


@pytest.mark.parametrize("name", ["tiny", "small", "default"])
def test_json_round_trip(name):
    c = preset(name)
    d = json.loads(c.to_json())
    fields = {f.name for f in dataclasses.fields(AccelConfig)}
    assert AccelConfig(**{k: d[k] for k in fields}) == c
    assert d["macs"] == c.macs
