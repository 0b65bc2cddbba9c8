"""The paper's models and ablations (Section 3.6, Tables 3, 6 and 7) as named variants.

One table, read by ``examples/benchmark.py`` (which trains them all) and by
:mod:`xmtc.reporting.results` (the tables of docs/results.md and the commands beside them), so the
two cannot disagree about what "BM+OT" means.

==============  ===========  ==========================================================
paper name      run dir      what it is
==============  ===========  ==========================================================
Seq2Seq         seq2seq      attention Seq2Seq, labels in file order
MLC2Seq         mlc2seq      Seq2Seq, labels from frequent to rare
SGM             sgm          MLC2Seq order + global embedding + masked softmax
Seq2Seq+LC      seq2seq_lc   Seq2Seq with LightConv
BM              bm           set decoder, bipartite matching loss only (λ = 0), no LightConv
BM+LC           bm_lc        BM with LightConv
BM+OT           bm_ot        BM + semantic OT loss (Eq. 17), no LightConv
BM+OT+LC        otseq2set    BM + OT + LightConv = OTSeq2Set
==============  ===========  ==========================================================

The set model's loss is ``L = L_BM + λ L_OT`` (Eq. 17): BM is ``λ = 0``, and
"+OT" keeps the preset's ``λ > 0``. A variant says what it is (LightConv or
not; OT loss or not), whatever the preset: :meth:`Variant.apply` sets both
switches on a config, and :meth:`Variant.flags` gives the named flags that turn
a preset into the variant, the fewest needed (none for OTSeq2Set on a preset
that has LightConv and ``λ > 0``; ``--ot-weight 0 --no-lightconv`` for BM), so
the commands in the docs stay short.
"""

from __future__ import annotations

from dataclasses import dataclass

from xmtc.config import ConfigError, NetConfig
from xmtc.config.settings import flag_of


@dataclass(frozen=True)
class Variant:
    """One row of the paper's ablation tables.

    name : the paper's name (``"BM+OT"``); ``examples/benchmark.py`` names its run directories so.
    run : the name of its committed record, ``results/<dataset>/<run>/`` (``"bm_ot"``).
    model : the registry model / training script (``examples/train_<model>.py``).
    lightconv : LightConv between encoder and decoder (Eq. 7).
    ot : the semantic OT loss with the preset's weight ``λ > 0`` (Eq. 17); ``False``: ``λ = 0``.
        Set model only: a sequence model has no OT loss.
    """

    name: str
    run: str
    model: str
    lightconv: bool
    ot: bool = False

    def __post_init__(self):
        if self.ot and self.model != "otseq2set":
            raise ValueError(f"variant {self.name}: only the set model (otseq2set) has an OT loss, not {self.model}")

    def check(self, net: NetConfig) -> None:
        """Raise :class:`ConfigError` if a preset's ``net`` cannot give this variant (an OT variant at ``λ = 0``)."""
        if self.ot and not net.ot_weight > 0:
            raise ConfigError(f"{self.name} needs an OT weight λ > 0 and the preset's is {net.ot_weight}; "
                              f"set one with --ot-weight X (benchmark.py: --set net.ot_weight=X)")

    def flags(self, net: NetConfig) -> tuple[str, ...]:
        """The named flags that turn a preset's ``net`` into this variant (the fewest needed)."""
        self.check(net)
        out: list[str] = []
        if self.model == "otseq2set" and not self.ot and net.ot_weight != 0:
            out += [flag_of("net.ot_weight"), "0"]
        if self.lightconv != net.lightconv(self.model):
            flag = flag_of("net.use_lightconv")
            out.append(flag if self.lightconv else "--no-" + flag[2:])
        return tuple(out)

    def apply(self, net: NetConfig) -> None:
        """Set the variant's switches on a preset's ``net`` (in place)."""
        self.check(net)
        net.use_lightconv = self.lightconv
        if self.model == "otseq2set" and not self.ot:
            net.ot_weight = 0.0


#: The paper's order (Table 3): sequence baselines, then the set model's ablations up to OTSeq2Set.
VARIANTS: tuple[Variant, ...] = (
    Variant("Seq2Seq", "seq2seq", "seq2seq", lightconv=False),
    Variant("MLC2Seq", "mlc2seq", "mlc2seq", lightconv=False),
    Variant("SGM", "sgm", "sgm", lightconv=False),
    Variant("Seq2Seq+LC", "seq2seq_lc", "seq2seq", lightconv=True),
    Variant("BM", "bm", "otseq2set", lightconv=False),
    Variant("BM+LC", "bm_lc", "otseq2set", lightconv=True),
    Variant("BM+OT", "bm_ot", "otseq2set", lightconv=False, ot=True),
    Variant("BM+OT+LC", "otseq2set", "otseq2set", lightconv=True, ot=True),
)

BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}
BY_RUN: dict[str, Variant] = {v.run: v for v in VARIANTS}
