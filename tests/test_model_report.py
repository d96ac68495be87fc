"""Whole-network report: totals and the reduction implied by groups and density."""

import pytest

from cgaccel.model.report import format_report, main, network_report
from cgaccel.model.resnet18 import layers, scaled


def test_scaled_cifar_report():
    rows = network_report("cifar", groups=4, density=0.3, seed=0, scale=4)
    assert [r.name for r in rows] == [scaled(s, 4).name for s in layers("cifar")]
    assert sum(r.dense_macs for r in rows) == sum(scaled(s, 4).dense_macs
                                                  for s in layers("cifar"))
    assert rows[0].groups == 1 and rows[0].reduction == 1.0  # conv1 (3 channels) stays dense
    for r in rows[1:]:
        assert r.groups == 4
        # executed / dense = 1/G + (1 - 1/G) * open fraction (no masks, no padding effects)
        assert r.executed_macs / r.dense_macs == pytest.approx(0.25 + 0.75 * r.open_fraction)
        assert abs(r.open_fraction - 0.3) <= 0.05  # tiny scaled maps: coarse calibration
    text = format_report(rows)
    assert text.splitlines()[-1].startswith("total")


def test_report_with_fbs_masks():
    rows = network_report("cifar", groups=2, density=0.3, seed=1, scale=8, fbs_density=0.5)
    gated = rows[1:]
    assert all(r.executed_macs < (0.5 + 0.5 * r.open_fraction) * r.dense_macs for r in gated)


def test_report_cli(capsys):
    assert main(["--geometry", "cifar", "--scale", "8", "--groups", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 22 and out[1].startswith("cifar.conv1/s8")
    assert main(["--scale", "8", "--density", "3"]) == 2
    assert "density must be between 0 and 1" in capsys.readouterr().err
