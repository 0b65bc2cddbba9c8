"""xmtc: data, configuration and training engine of the OTSeq2Set toolkit.

Light on import (no torch): ``xmtc.data.datasets`` (registry, readers),
``xmtc.data.text`` (tokenisers, Vocab), ``xmtc.data.embeddings`` (GloVe) and
``xmtc.data.batching`` (torch Dataset, collate -> Batch) are imported on use.
"""

__all__ = ["datasets", "text", "embeddings", "batching"]
