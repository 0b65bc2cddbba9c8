"""End-to-end: each of the four models learns a small synthetic task on CPU.

20 labels; label k emits 2-3 of its own 3 characteristic tokens; a document
has 1-4 labels and a few noise tokens, shuffled. A bag-of-words reading is
enough to solve it, so a model that trains correctly reaches a high held-out
micro-F1 within a few hundred steps, and a broken training loop (wrong
targets, no gradient, mis-aligned teacher forcing, wrong matching) does not.
Random guessing of 1-4 labels out of 20 scores about 0.13 micro-F1.
"""

import random
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

import losses.sequence  # noqa: F401 -- the models' compute_loss imports these lazily; a broken
import losses.set_loss  # noqa: F401 -- package must fail this file, not skip it
from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig
from models import OTSeq2Set, OTSeq2SetConfig

N_LABELS, N_NOISE, MAX_LABELS = 20, 20, 4
VOCAB = 2 + 3 * N_LABELS + N_NOISE  # 0 <pad>, 1 <unk>


def make_docs(n, rng):
    docs = []
    for _ in range(n):
        labels = rng.sample(range(N_LABELS), rng.randint(1, MAX_LABELS))
        tokens = []
        for k in labels:
            tokens += rng.sample([2 + 3 * k + j for j in range(3)], rng.randint(2, 3))
        tokens += [2 + 3 * N_LABELS + rng.randrange(N_NOISE) for _ in range(rng.randint(0, 4))]
        rng.shuffle(tokens)
        docs.append((tokens, labels))
    return docs


def collate(docs, rank=None):
    """A batch as the data layer gives it; ``rank`` re-orders labels (frequency order)."""
    S, n = max(len(t) for t, _ in docs), max(len(l) for _, l in docs)
    src = torch.zeros(len(docs), S, dtype=torch.long)
    labels = torch.zeros(len(docs), n, dtype=torch.long)
    label_mask = torch.zeros(len(docs), n, dtype=torch.bool)
    for i, (tokens, labs) in enumerate(docs):
        src[i, : len(tokens)] = torch.tensor(tokens)
        labs = sorted(labs, key=rank.__getitem__) if rank else labs
        labels[i, : len(labs)] = torch.tensor(labs)
        label_mask[i, : len(labs)] = True
    return SimpleNamespace(src=src, src_mask=src != 0, labels=labels, label_mask=label_mask,
                           index=torch.arange(len(docs)))


def micro_f1(pred, gold):
    tp = sum(len(p & g) for p, g in zip(pred, gold))
    n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
    return 2 * tp / max(n_pred + n_gold, 1)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


SMALL = dict(vocab_size=VOCAB, n_labels=N_LABELS, embed_dim=32, label_embed_dim=32, hidden_size=48, dropout=0.0)

CASES = {
    "otseq2set": lambda: OTSeq2Set(OTSeq2SetConfig(**SMALL, n_steps=MAX_LABELS, lightconv_kernels=(3, 7),
                                                   lightconv_heads=4, last_stride=2, ipot_iter=20)),
    "seq2seq": lambda: Seq2Seq(Seq2SeqConfig(**SMALL, max_steps=MAX_LABELS + 1)),
    "mlc2seq": lambda: MLC2Seq(Seq2SeqConfig(**SMALL, max_steps=MAX_LABELS + 1)),
    "sgm": lambda: SGM(SGMConfig(**SMALL, max_steps=MAX_LABELS + 1)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_model_learns_synthetic_task(name):
    rng = random.Random(0)
    torch.manual_seed(0)
    train, test = make_docs(600, rng), make_docs(200, rng)
    model = CASES[name]()
    rank = None
    if model.label_order == "frequency":
        counts = Counter(k for _, labs in train for k in labs)
        rank = {k: r for r, (k, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for epoch in range(8):
        rng.shuffle(train)
        for i in range(0, len(train), 32):
            loss = model.compute_loss(collate(train[i : i + 32], rank))["loss"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 8.0)
            opt.step()
    model.eval()
    pred = []
    for i in range(0, len(test), 100):
        pred += model.predict(collate(test[i : i + 100], rank)).labels
    f1 = micro_f1(pred, [set(l) for _, l in test])
    assert f1 > 0.6, f"{name}: held-out micro-F1 {f1:.3f}"
