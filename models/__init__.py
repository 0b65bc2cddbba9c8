"""Neural models of OTSeq2Set (paper Section 2.2): encoder, attention, LightConv, decoder.

Import the parts directly, e.g. ``from models import OTSeq2Set, OTSeq2SetConfig``.
This package never imports ``xmtc`` or ``baselines``.
"""

from . import specials
from .attention import BahdanauAttention
from .backbone import BackboneConfig, EncoderDecoder
from .decoder import Bottleneck, DecodeOutput, Decoder, FullOutput, GlobalEmbedding, Memory
from .encoder import Encoder
from .lightconv import LightConv, LightConvLayer
from .otseq2set import OTSeq2Set, OTSeq2SetConfig
from .prediction import Prediction, prediction_from_steps

__all__ = [
    "specials", "BahdanauAttention", "BackboneConfig", "EncoderDecoder", "Bottleneck", "FullOutput", "DecodeOutput",
    "Decoder", "GlobalEmbedding", "Memory", "Encoder", "LightConv", "LightConvLayer", "OTSeq2Set",
    "OTSeq2SetConfig", "Prediction", "prediction_from_steps",
]
