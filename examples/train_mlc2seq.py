"""Train and evaluate MLC2Seq (Nam et al., 2017): Seq2Seq over labels sorted from frequent to rare.

    python examples/train_mlc2seq.py --data reuters --fast           # minutes on a CPU
    python examples/train_mlc2seq.py --data eurlex --embeddings glove.840B.300d.txt
    python examples/train_mlc2seq.py --data reuters --fast --resume  # continue an interrupted run

The model: BiGRU encoder + attention GRU decoder (LightConv with ``--lightconv``),
decoding greedily until EOS. The loss: token cross-entropy over the labels
sorted from frequent to rare, then EOS (teacher forcing).

The steps and the run directory (default ``runs/mlc2seq-<data>[-fast]``) are those
of ``examples/train_otseq2set.py``, whose :func:`run` this script calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # examples/ (already on the path when run as a script)
from train_otseq2set import run  # noqa: E402

MODEL = "mlc2seq"


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return run(MODEL, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
