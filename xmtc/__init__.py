"""xmtc: data, configuration and training engine of the OTSeq2Set toolkit.

Light on import (no torch): ``xmtc.datasets`` (registry, readers),
``xmtc.text`` (tokenisers, Vocab), ``xmtc.embeddings`` (GloVe) and
``xmtc.batching`` (torch Dataset, collate -> Batch) are imported on use.
"""

__all__ = ["datasets", "text", "embeddings", "batching"]
