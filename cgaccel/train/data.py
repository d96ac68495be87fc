"""The data set: scikit-learn's 8x8 handwritten digits, split and quantized the same way everywhere.

The float network sees exactly the dequantized int8 input, so the only error the int8 export adds
is its own rounding: ``x_q = (pixel * 127 + 8) // 16`` (pixels are 0..16, so ``x_q`` is 0..127)
and the float input is ``x_q / 127``.
"""

import numpy as np

__all__ = ["INPUT_SCALE", "SPLIT_SEED", "TEST_FRACTION", "quantize_pixels", "load_digits_split"]

#: Float value of one int8 input step.
INPUT_SCALE = 1.0 / 127.0
#: ``random_state`` of the stratified train/test split.
SPLIT_SEED = 0
#: Fraction of the 1,797 images held out as the test split.
TEST_FRACTION = 0.25


def quantize_pixels(pixels):
    """Quantize digits pixels (integers 0..16) to int8 network input (0..127).

    Parameters
    ----------
    pixels : array_like of int
        Any shape, values 0..16.

    Returns
    -------
    numpy.ndarray of int8, same shape.

    Raises
    ------
    ValueError
        If a pixel is outside 0..16.
    """
    p = np.asarray(pixels)
    if p.dtype.kind not in "iu":
        raise TypeError(f"Pixels must be integers, not {p.dtype}")
    if p.size and (p.min() < 0 or p.max() > 16):
        raise ValueError(f"Pixels must be between 0 and 16, not {int(p.min())}..{int(p.max())}")
    return ((p.astype(np.int32) * 127 + 8) // 16).astype(np.int8)


def load_digits_split():
    """Load the digits and split them (stratified, fixed seed).

    Returns
    -------
    dict
        ``train_pixels``/``test_pixels`` uint8 ``[N, 8, 8]`` (0..16) and ``train_labels``/
        ``test_labels`` uint8 ``[N]``: 1,347 training and 450 test images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    tr_x, te_x, tr_y, te_y = train_test_split(pixels, labels, test_size=TEST_FRACTION,
                                              random_state=SPLIT_SEED, stratify=labels)
    return {"train_pixels": tr_x, "train_labels": tr_y,
            "test_pixels": te_x, "test_labels": te_y}
