"""Keras layers of keras-dccrn.

Complex convention (one for the whole package, see ``complex_ops``): a complex
tensor with ``C`` channels is a real tensor whose last axis holds ``2 * C``
values, **real parts first, imaginary parts second**. Spectra are
``[batch, frames, freq, 2]``; complex feature maps ``[batch, frames, freq, 2C]``.
"""

from keras_dccrn.layers.attention import AxialAttention
from keras_dccrn.layers.batch_norm import BatchNormalization
from keras_dccrn.layers.complex_conv import ComplexConv2D, ComplexConv2DTranspose
from keras_dccrn.layers.complex_dense import ComplexDense
from keras_dccrn.layers.complex_lstm import ComplexLSTM
from keras_dccrn.layers.complex_norm import ComplexBatchNormalization
from keras_dccrn.layers.conformer import DilatedConvModule, DualPathConformerBlock, FeedForward
from keras_dccrn.layers.fusion import BranchInteraction, EncoderDecoderAttention
from keras_dccrn.layers.prelu import PReLU
from keras_dccrn.layers.stft import ISTFT, STFT

__all__ = [
    "STFT",
    "ISTFT",
    "ComplexConv2D",
    "ComplexConv2DTranspose",
    "ComplexBatchNormalization",
    "BatchNormalization",
    "PReLU",
    "ComplexLSTM",
    "ComplexDense",
    "FeedForward",
    "AxialAttention",
    "DilatedConvModule",
    "DualPathConformerBlock",
    "BranchInteraction",
    "EncoderDecoderAttention",
]
