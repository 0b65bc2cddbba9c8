"""Train and evaluate SGM (Yang et al., 2018): MLC2Seq order, global embedding (tau = 0.1), masked softmax at inference.

    python examples/train_sgm.py --data reuters --fast           # minutes on a CPU
    python examples/train_sgm.py --data eurlex --embeddings glove.840B.300d.txt
    python examples/train_sgm.py --data reuters --fast --resume  # continue an interrupted run

The model: BiGRU encoder + attention GRU decoder (LightConv with ``--lightconv``),
decoding greedily until EOS, feeding back the global embedding. The loss: token
cross-entropy over the labels sorted from frequent to rare, then EOS.

The steps and the run directory (default ``runs/sgm-<data>[-fast]``) are those
of ``examples/train_otseq2set.py``, whose :func:`run` this script calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # examples/ (already on the path when run as a script)
from train_otseq2set import run  # noqa: E402

MODEL = "sgm"


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return run(MODEL, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
