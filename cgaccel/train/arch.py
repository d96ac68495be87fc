"""The ResNet-8 wiring, shared by the float network and the exported int8 network.

The network is a list of conv layers in execution order; each names the tensor it reads, the
tensor it writes and (for the second conv of a residual block) the tensor added to its output.
The float model (:mod:`cgaccel.train.nets`) and the network file (:mod:`cgaccel.netfile`) both
follow this one list, so they cannot disagree on the wiring.
"""

from dataclasses import asdict, dataclass

__all__ = ["ConvSpec", "resnet8_specs"]


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer: conv, batch norm, optional gating/FBS, optional residual add and ReLU.

    Members
    -------
    name : str
        Layer name, unique in the network.
    input, output : str
        Tensor read and tensor written (``"image"`` is the network input).
    res : str or None
        Tensor added after the layer's own requantization (before ReLU).
    cin, cout, kernel, stride, pad : int
        Conv geometry (square kernel).
    groups : int
        CGNet channel groups G (1: dense, no gate).
    relu : bool
        ReLU after the residual add.
    fbs : bool
        The layer has an FBS saliency predictor and a per-image output-channel mask.
    imask_from : str or None
        Layer whose FBS output mask marks this layer's input channels zero.
    """

    name: str
    input: str
    output: str
    res: object
    cin: int
    cout: int
    kernel: int
    stride: int
    pad: int
    groups: int
    relu: bool
    fbs: bool
    imask_from: object

    def to_dict(self):
        return asdict(self)


def resnet8_specs(widths=(16, 32, 64), groups=4, fbs=False, in_channels=1):
    """Wiring of a ResNet-8: a 3x3 stem and three basic blocks, the last two striding by 2.

    The stem (one input channel) and the 1x1 projection shortcuts are dense; the two 3x3 convs
    of each block are channel gated with ``groups`` groups and, if ``fbs``, carry an FBS
    predictor. The identity shortcut of block 1 adds the stem output, so the stem and block 1
    share one activation scale.

    Parameters
    ----------
    widths : tuple of 3 int
        Channels of the three stages.
    groups : int
        CGNet groups of the gated convs; must divide every width.
    fbs : bool
        Give the gated convs an FBS predictor.
    in_channels : int
        Image channels.

    Returns
    -------
    list of ConvSpec

    Raises
    ------
    ValueError
        If ``groups`` does not divide a width.
    """
    if len(widths) != 3 or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"Widths must be three positive integers, not {widths!r}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"Groups must be a positive integer, not {groups!r}")
    for w in widths:
        if w % groups:
            raise ValueError(f"Groups must divide every width {widths}, not {groups}")
    specs = [ConvSpec("stem", "image", "stem", None, in_channels, widths[0], 3, 1, 1, 1, True,
                      False, None)]
    prev, cin = "stem", widths[0]
    for i, w in enumerate(widths, start=1):
        stride = 1 if i == 1 else 2
        s = f"s{i}"
        if stride != 1 or cin != w:
            specs.append(ConvSpec(f"{s}.short", prev, f"{s}.short", None, cin, w, 1, stride, 0,
                                  1, False, False, None))
            res = f"{s}.short"
        else:
            res = prev
        specs.append(ConvSpec(f"{s}.conv1", prev, f"{s}.mid", None, cin, w, 3, stride, 1,
                              groups, True, fbs, None))
        specs.append(ConvSpec(f"{s}.conv2", f"{s}.mid", f"{s}.out", res, w, w, 3, 1, 1,
                              groups, True, fbs, f"{s}.conv1" if fbs else None))
        prev, cin = f"{s}.out", w
    return specs
