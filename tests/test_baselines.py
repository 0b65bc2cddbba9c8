"""Unit tests of baselines/: targets, teacher forcing, greedy decoding, SGM masking."""

from types import SimpleNamespace

import pytest
import torch

from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig, sequence_targets
from models.specials import BOS, EMPTY, EOS, N_SPECIAL, PAD

VOCAB, N_LABELS = 60, 12


def cfg(cls=Seq2SeqConfig, **kw):
    base = dict(vocab_size=VOCAB, n_labels=N_LABELS, embed_dim=16, label_embed_dim=8, hidden_size=16,
                max_steps=6, dropout=0.0)
    base.update(kw)
    return cls(**base)


def batch(lengths=(9, 4, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    S = max(lengths)
    mask = torch.arange(S)[None] < torch.tensor(lengths)[:, None]
    src = torch.randint(2, VOCAB, (len(lengths), S), generator=g).masked_fill(~mask, 0)
    labels = torch.tensor([[5, 0, 7], [3, 0, 0], [1, 2, 4]])[: len(lengths)]
    label_mask = torch.tensor([[1, 0, 1], [1, 0, 0], [1, 1, 1]]).bool()[: len(lengths)]  # a hole in row 0
    return SimpleNamespace(src=src, src_mask=mask, labels=labels, label_mask=label_mask)


def test_sequence_targets_packs_labels_and_closes_with_eos():
    b = batch()
    inputs, targets, mask = sequence_targets(b.labels, b.label_mask)
    s = N_SPECIAL
    assert targets.tolist() == [[5 + s, 7 + s, EOS, PAD], [3 + s, EOS, PAD, PAD], [1 + s, 2 + s, 4 + s, EOS]]
    assert inputs.tolist() == [[BOS, 5 + s, 7 + s, PAD], [BOS, 3 + s, PAD, PAD], [BOS, 1 + s, 2 + s, 4 + s]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_label_orders():
    assert Seq2Seq.label_order == "file"
    assert MLC2Seq.label_order == "frequency"
    assert SGM.label_order == "frequency"


@pytest.mark.parametrize("cls,config_cls", [(Seq2Seq, Seq2SeqConfig), (MLC2Seq, Seq2SeqConfig), (SGM, SGMConfig)])
def test_shapes_loss_and_prediction(cls, config_cls):
    torch.manual_seed(0)
    model = cls(cfg(config_cls))
    b = batch()
    _, targets, target_mask = sequence_targets(b.labels, b.label_mask)
    logits = model(b.src, b.src_mask, targets, target_mask)
    assert logits.shape == (3, 4, N_SPECIAL + N_LABELS)
    out = model.compute_loss(b)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    pred = model.eval().predict(b)
    assert pred.scores.shape == (3, N_LABELS)
    assert all(all(0 <= k < N_LABELS for k in s) for s in pred.labels)


def test_teacher_forcing_feeds_gold_symbols():
    torch.manual_seed(0)
    model = Seq2Seq(cfg()).eval()
    b = batch()
    inputs, targets, target_mask = sequence_targets(b.labels, b.label_mask)
    fed = []
    hook = model.decoder.embedding.register_forward_hook(lambda m, inp, out: fed.append(inp[0].clone()))
    model(b.src, b.src_mask, targets, target_mask)
    hook.remove()
    assert torch.equal(torch.stack(fed, 1), inputs)


def test_greedy_stops_at_eos():
    torch.manual_seed(0)
    model = Seq2Seq(cfg()).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS] = 50.0
        model.decoder.output.bias[EMPTY] = 100.0  # forbidden at inference, must not win
    pred = model.predict(batch())
    assert pred.labels == [set(), set(), set()]


def test_sgm_never_repeats_a_label():
    torch.manual_seed(0)
    model = SGM(cfg(SGMConfig, max_steps=8)).eval()
    with torch.no_grad():
        model.decoder.output.bias[N_SPECIAL + 3] = 30.0  # label 3 dominates every step
    b = batch()
    memory, s0 = model.encode(b.src, b.src_mask)
    unmasked = model.decoder.decode(memory, s0, 8, forbidden=model._forbidden(s0.device))
    assert (unmasked.tokens == N_SPECIAL + 3).sum(1).min() > 1  # the mask is what prevents repeats
    masked = model.decoder.decode(memory, s0, 8, forbidden=model._forbidden(s0.device),
                                  forbid_repeats=True, stop_at_eos=True)
    for row, alive in zip(masked.tokens, masked.alive):
        real = row[alive & (row >= N_SPECIAL)].tolist()
        assert len(real) == len(set(real))
        assert N_SPECIAL + 3 in real
    assert model.predict(b).labels[0] >= {3}


def test_sgm_global_embedding_parameters():
    plain = Seq2Seq(cfg())
    sgm = SGM(cfg(SGMConfig))
    E = 8
    assert sgm.num_parameters() - plain.num_parameters() == 2 * E * E + E
    assert sgm.decoder.global_embedding.tau == 0.1


def test_global_embedding_gate_is_convex_mix():
    torch.manual_seed(0)
    ge = SGM(cfg(SGMConfig)).decoder.global_embedding
    table = torch.randn(N_SPECIAL + N_LABELS, 8)
    e = table[[5, 6]]
    logits = torch.full((2, N_SPECIAL + N_LABELS), -30.0)
    logits[:, 5] = 30.0  # e_bar == e(5)
    torch.testing.assert_close(ge(e[:1], logits[:1], table), e[:1])


def test_batch_of_one_equals_batch_of_copies():
    torch.manual_seed(0)
    model = SGM(cfg(SGMConfig)).eval()
    one = batch((7,))
    copies = SimpleNamespace(**{k: v.repeat(3, *[1] * (v.dim() - 1)) for k, v in vars(one).items()})
    p1, p3 = model.predict(one), model.predict(copies)
    assert p3.labels == p1.labels * 3
    torch.testing.assert_close(p3.scores, p1.scores.expand(3, -1))
