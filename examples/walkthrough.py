# %% [markdown]
# # OTSeq2Set, step by step, beside the code
#
# A literate walkthrough of *OTSeq2Set: An Optimal Transport Enhanced
# Sequence-to-Set Model for Extreme Multi-label Text Classification* (Cao &
# Zhang, EMNLP 2022). Each step gives the paper's equation (with its number),
# the file and function that implement it (written like
# `losses/matching.py::assign_targets`), and a tiny example with real numbers
# computed by that code.
#
# Run it top to bottom (CPU, a few seconds):
#
#     python examples/walkthrough.py
#
# `docs/walkthrough.md` is generated from this file, outputs included:
#
#     python examples/walkthrough.py --markdown docs/walkthrough.md
#
# `tests/test_walkthrough.py` runs it, checks that this page matches it, and
# imports every file-and-function reference below, so none can go stale.
#
# Notation: a document x of l tokens, its gold label set y of n labels from a
# vocabulary L of V labels (plus the empty label ∅), a decoder that runs N
# steps (N = the largest label set of the dataset). Shapes: B batch, S source
# tokens, N steps, V output ids.

# %%
import itertools

import numpy as np
import ot  # POT, the exact optimal-transport reference
import torch

from baselines.seq2seq import sequence_targets
from evaluation import evaluate
from losses.ipot import ipot, ipot_reference, ipot_value
from losses.matching import assign_targets
from losses.sequence import sequence_cross_entropy
from losses.set_loss import cosine_distance, set_loss
from models.decoder import Bottleneck
from models.lightconv import LightConv
from models.otseq2set import OTSeq2Set, OTSeq2SetConfig
from models.specials import BOS, EMPTY, EOS, N_SPECIAL
from xmtc.data import datasets
from xmtc.data.batching import SplitDataset, collate

torch.manual_seed(0)
torch.set_num_threads(1)  # tiny tensors: one thread is fastest (and immune to a busy machine)
np.set_printoptions(precision=3, suppress=True)
torch.set_printoptions(precision=3, sci_mode=False)


def table(header, rows):
    """Print rows as a small aligned text table."""
    cells = [[str(h) for h in header]] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


# %% [markdown]
# ## 1. The task: extreme multi-label text classification (XMTC)
#
# Given a document x, find the subset y ⊆ L of relevant labels; |L| is large
# (4K to 670K labels in the paper) and |y| varies per document. Fully connected
# classifiers score every label and keep the top k or those above a threshold;
# a *sequence-to-set* model generates the set itself, one label per decoding
# step, so the number of labels is the model's own decision.
#
# Data: `xmtc/data/datasets/__init__.py::load` returns splits of documents with
# their gold label sets. The `synthetic` dataset (planted label words, label
# clusters that co-occur, a long tail, `xmtc/data/datasets/synthetic.py::build`) is
# generated in a second, so we use it here. A label set is scored as a set:
# micro-F1 over all (document, label) pairs is the paper's main metric
# (Section 3.2), computed by `evaluation/core.py::evaluate`.

# %%
data = datasets.load("synthetic", n_docs=300, n_labels=12, cache=False)
stats = data.stats()
print(data)
print(f"labels per training document: mean {stats['mean_labels']:.2f}, max {stats['max_labels']}")
doc = data.train[0]
print("document 0:", " ".join(doc.text.split()[:12]), "...")
print("gold labels:", [data.label_names[k] for k in doc.labels])

gold = [{0, 1}, {2}]
pred = [{0, 3}, {2}]  # one hit + one miss on doc 0, exact on doc 1
m = evaluate(pred, gold, n_labels=4)
print(f"micro-P {m['micro_precision']:.3f}  micro-R {m['micro_recall']:.3f}  micro-F1 {m['micro_f1']:.3f}")

# %% [markdown]
# ## 2. Why a fixed label order hurts Seq2Seq
#
# A Seq2Seq model (and MLC2Seq, SGM) is trained by teacher forcing to emit the
# gold labels in one fixed order (file order, or frequent-to-rare) and then EOS:
#
# $$\mathcal{L}_{CE} = -\sum_{t=1}^{n+1} \log p_t(y_t \mid y_{<t}, x)$$
#
# (`losses/sequence.py::sequence_cross_entropy`). The same predictions are
# judged differently when only the *order* of the gold labels changes, although
# the label *set* is the same: the model is penalised for putting a correct
# label at the "wrong" step. OTSeq2Set instead matches the N predictions to the
# gold labels before scoring (Section 4 below), so its loss
# (`losses/set_loss.py::set_loss`) does not depend on the order.
#
# Numbers: three decoding steps over V = 4 specials + 3 labels; the model
# believes label A at step 1 and label B at step 2, then EOS. The gold set is
# {A, B}. (Teacher forcing would also feed the gold order back as input, see
# `baselines/seq2seq.py::sequence_targets`; here the logits are held fixed to
# isolate the loss.)

# %%
A, B, C = N_SPECIAL + 0, N_SPECIAL + 1, N_SPECIAL + 2  # output ids of three labels
V = N_SPECIAL + 3
logits = torch.full((1, 3, V), -2.0)  # (B=1, T=3, V)
logits[0, 0, A] = 2.0  # step 1 believes A
logits[0, 1, B] = 2.0  # step 2 believes B
logits[0, 2, EOS] = 2.0  # step 3 ends the sequence
logits[0, 2, EMPTY] = 1.5  # (for the set loss, the last step should be ∅)

rows = []
for order in ([A, B], [B, A]):
    seq = torch.tensor([order + [EOS]])  # (1, 3): y_1 y_2 EOS
    ce = sequence_cross_entropy(logits, seq, torch.ones(1, 3, dtype=torch.bool))["ce"]
    gold_set = torch.tensor([order])  # (1, n=2), same labels, this order
    sl = set_loss(logits, gold_set, torch.ones(1, 2, dtype=torch.bool), ot_weight=0.0)["loss"]
    rows.append(["gold order " + ", ".join("AB"[o - A] for o in order), float(ce), float(sl)])
table(["targets", "sequence CE", "set loss (Eq. 13)"], rows)
assert rows[0][1] < rows[1][1]  # the sequence loss punishes the permuted (but equal) set
assert abs(rows[0][2] - rows[1][2]) < 1e-6  # the set loss does not see the order

inputs, targets, target_mask = sequence_targets(torch.tensor([[1, 0]]), torch.tensor([[True, True]]))
print("teacher forcing, gold order (B, A): inputs ", inputs.tolist(), " targets ", targets.tolist(),
      f" (BOS={BOS}, EOS={EOS}, label k -> output id k+{N_SPECIAL})")

# %% [markdown]
# ## 3. Student forcing (Eq. 1, Eq. 8)
#
# OTSeq2Set decodes N steps and feeds each step its *own* greedy prediction,
# in training as at inference, so there is no exposure bias between the two:
#
# $$P(\hat y \mid x) = \prod_{t=1}^{N} P(\hat y_t \mid \bar y_1, \dots, \bar y_{t-1}, x),\qquad
#   \bar y_{t-1} = \arg\max p_{t-1}\qquad\text{(Eq. 1)}$$
#
# $$s_t = \mathrm{GRU}\big(s_{t-1}, [e(\bar y_{t-1}); c_t; \hat c_t]\big)\qquad\text{(Eq. 8)}$$
#
# where h_i = [h→_i; h←_i] are the states of a bidirectional GRU encoder
# (Eq. 2-3, `models/encoder.py::Encoder`), c_t the attention context over them
# (Eq. 4-6, `models/attention.py::BahdanauAttention`) and ĉ_t the same
# attention over the LightConv states (Section 6 below). The decoding loop is
# `models/decoder.py::Decoder.decode` (`inputs=None` means student forcing);
# `models/otseq2set.py::OTSeq2Set.forward` runs it for N steps. Below, a tiny
# untrained model: we replay the loop by hand with
# `models/decoder.py::Decoder.step` and check that the symbol fed at step t is
# the argmax of step t−1.

# %%
cfg = OTSeq2SetConfig(vocab_size=len(data.vocab), n_labels=data.n_labels, embed_dim=16, label_embed_dim=16,
                      hidden_size=16, encoder_layers=1, lightconv_heads=4, dropout=0.0, n_steps=4)
model = OTSeq2Set(cfg).eval()
batch = collate([SplitDataset(data.train, data.n_labels)[i] for i in range(2)])  # two documents
with torch.no_grad():
    out = model.decode(batch.src, batch.src_mask)  # logits (B, N, V), tokens (B, N)
    memory, state = model.encode(batch.src, batch.src_mask)
    prev = torch.full((2,), BOS)  # ȳ_0 = BOS
    fed = []
    for t in range(cfg.n_steps):
        step_logits, state = model.decoder.step(prev, state, memory)  # (B, V)
        fed.append(prev.tolist())
        prev = step_logits.argmax(-1)  # student forcing: feed our own prediction
print("logits", tuple(out.logits.shape), "= (B, N, V)")
print("document 0, fed at steps 1..N:", [f[0] for f in fed], f"({BOS} = BOS);  argmax of steps 1..N:",
      out.tokens[0].tolist())
assert torch.equal(torch.tensor(fed[1:]).T, out.tokens[:, :-1])

# %% [markdown]
# ## 4. Bipartite matching: which step is trained towards which label (Eq. 11-13)
#
# The N predicted distributions p_1..p_N are a set; the gold labels are
# re-ordered by the permutation of lowest total cost (padded with ∅ to length N)
#
# $$\hat\rho = \arg\min_{\rho\in\mathcal{O}_N} \sum_{i=1}^{N} \mathcal{C}(y_{\rho(i)}, p_i)
#   \qquad\text{(Eq. 11)},\qquad
#   \mathcal{C}(y_j, p_i) = -\mathbb{1}_{\lbrace y_j\neq\varnothing\rbrace}\, p_i(y_j)\qquad\text{(Eq. 12)}$$
#
# solved exactly by the Hungarian method. Two assignment schemes (Fig. 1):
#
# * `all`: the n real labels may go to any of the N steps; the rest get ∅;
# * `first_n`: the n real labels are matched among the first n steps; steps
#   n+1..N get ∅.
#
# Implementation: `losses/matching.py::assign_targets` (scipy's
# `linear_sum_assignment` per example, after one batched gather of the gold
# labels' probabilities). Training calls it with `wait=False`: the gather and
# the copy to the host are queued, the OT term's device work is queued next,
# and `losses/matching.py::PendingAssignment.result` then solves on the host.
# A 3-step, 2-label example:

# %%
V = N_SPECIAL + 3  # specials + labels A, B, C
probs = torch.zeros(1, 3, V)  # (B=1, N=3, V)
probs[0, :, [EMPTY, A, B, C]] = torch.tensor([
    [0.60, 0.10, 0.20, 0.10],  # step 1: mostly ∅
    [0.10, 0.60, 0.30, 0.00],  # step 2: A
    [0.05, 0.20, 0.70, 0.05],  # step 3: B
])
gold = torch.tensor([[A, B]])  # (B=1, n=2) output ids
gold_mask = torch.ones(1, 2, dtype=torch.bool)

name = {EMPTY: "∅", A: "A", B: "B", C: "C"}
print("cost C(y_j, p_i) = -p_i(y_j)  (Eq. 12)")
table(["step", "p_i(∅)", "C(A, p_i)", "C(B, p_i)"],
      [[i + 1, float(probs[0, i, EMPTY]), -float(probs[0, i, A]), -float(probs[0, i, B])] for i in range(3)])
print()
assigned = {s: assign_targets(probs, gold, gold_mask, s)[0].tolist() for s in ("all", "first_n")}
table(["step", "target (all)", "target (first_n)"],
      [[i + 1, name[assigned["all"][i]], name[assigned["first_n"][i]]] for i in range(3)])


def total_cost(targets):
    return -sum(float(probs[0, i, y]) for i, y in enumerate(targets) if y != EMPTY)


# brute force over all orders of (A, B, ∅) -- the definition of Eq. 11
orders = set(itertools.permutations([A, B, EMPTY]))
best_all = min(orders, key=total_cost)
best_first = min((o for o in orders if EMPTY not in o[:2]), key=total_cost)
print(f"\ntotal cost: all {total_cost(assigned['all']):.2f}, first_n {total_cost(assigned['first_n']):.2f}")
assert abs(total_cost(assigned["all"]) - total_cost(best_all)) < 1e-9
assert abs(total_cost(assigned["first_n"]) - total_cost(best_first)) < 1e-9

# %% [markdown]
# With `all`, step 1 (which believes ∅) is left to ∅ and A, B go to the steps
# that believe them. With `first_n` the two labels must take steps 1-2, so B
# lands on step 1 and step 3 is trained towards ∅ although it believes B.
# Section 3.6 of the paper: which scheme wins depends on the distribution of
# label-set sizes (`python examples/plots.py dataset eurlex57k` draws it, the
# paper's Figure 4).
#
# The matched targets ŷ are then trained by negative log-likelihood, a real
# label with weight 1 and ∅ with weight λ_∅ = 0.2 so that the model
# concentrates on real labels (λ_∅ sets how many labels the model emits; on
# EURLEX57K at `--preset cpu` the paper's 0.2 emits too many, and the preset
# takes 0.5: [`results.md`](results.md), "The empty label's weight λ_∅"):
#
# $$\mathcal{L}_{match}(\hat y, p) = -\sum_{i=1}^{N}\Big[\mathbb{1}_{\lbrace \hat y_i\neq\varnothing\rbrace}\log p_i(\hat y_i)
#   + \mathbb{1}_{\lbrace \hat y_i=\varnothing\rbrace}\,\lambda_\varnothing \log p_i(\varnothing)\Big]\qquad\text{(Eq. 13)}$$
#
# Our `losses/set_loss.py::matching_loss` (all of Eq. 13, called by
# `losses/set_loss.py::set_loss`) divides this sum by the sum of the weights
# (the weighted mean over the B×N steps, as `F.nll_loss(weight=...)` in the
# authors' code). By hand for scheme `all` (targets ∅, A, B):

# %%
logp = torch.log(probs.clamp_min(1e-12))  # probabilities as logits: softmax(log p) = p
w = torch.tensor([0.2, 1.0, 1.0])  # weights of ∅, A, B
nll = -torch.stack([logp[0, 0, EMPTY], logp[0, 1, A], logp[0, 2, B]])
by_hand = float((w * nll).sum() / w.sum())
ours = float(set_loss(logp, gold, gold_mask, ot_weight=0.0, scheme="all")["match"])
print(f"-log p: {nll.numpy()}  weights {w.numpy()}  ->  L_match = {by_hand:.4f} (by hand), {ours:.4f} (set_loss)")
assert abs(by_hand - ours) < 1e-5

# %% [markdown]
# ## 5. IPOT and the semantic optimal-transport term (Eq. 14-17)
#
# Matching uses one probability per step. The OT term uses all of them: it
# moves the N predictions, as points in the label-embedding space, onto the n
# gold labels. With μ uniform over the N steps and ν uniform over the n labels,
#
# $$\mathcal{L}_{OT}(p, y) = \min_{\Gamma\in\Sigma(\mu,\nu)} \langle C, \Gamma\rangle
#   = \min_\Gamma \sum_{i=1}^{N}\sum_{j=1}^{n} \Gamma_{ij}\, c(p_i, y_j)\qquad\text{(Eq. 14)}$$
#
# with Σ(μ, ν) = {Γ ≥ 0 : Γ1 = μ, Γᵀ1 = ν}. The plan comes from IPOT (Xie et
# al. 2020): proximal-point steps with a KL proximity term, each solved by
# one Sinkhorn sweep. With G = exp(−C/β), Γ⁽¹⁾ = 11ᵀ, σ = ν:
#
# $$Q = G\odot\Gamma^{(t)},\quad \delta = \mu \oslash (Q\sigma),\quad \sigma = \nu\oslash(Q^\top\delta),\quad
#   \Gamma^{(t+1)} = \mathrm{diag}(\delta)\,Q\,\mathrm{diag}(\sigma)$$
#
# Unlike Sinkhorn, IPOT converges to the *exact* optimum for any β (the paper:
# β = 1, 50 iterations). Implementation: `losses/ipot.py::ipot` (batched,
# stabilised, no loop over the batch) beside `losses/ipot.py::ipot_reference`
# (the algorithm's loops in numpy). A 3×2 problem next to POT's exact
# `ot.emd`:

# %%
cost = torch.tensor([[0.2, 0.9],
                     [0.6, 0.1],
                     [0.3, 0.5]], dtype=torch.float64)  # (N=3 steps, n=2 labels)
exact = ot.emd(np.full(3, 1 / 3), np.full(2, 1 / 2), cost.numpy())
rows = []
for T in (1, 2, 5, 10, 20, 50):
    plan = ipot(cost, beta=1.0, n_iter=T)  # (3, 2)
    rows.append([T, " ".join(f"{v:.3f}" for v in plan.flatten().tolist()),
                 float(ipot_value(cost, plan)), float(np.abs(plan.numpy() - exact).max())])
rows.append(["ot.emd", " ".join(f"{v:.3f}" for v in exact.flatten()), float((cost.numpy() * exact).sum()), 0.0])
table(["iterations", "plan Γ (row-major)", "<C, Γ>", "max |Γ - Γ*|"], rows)
assert np.abs(ipot(cost, n_iter=50).numpy() - exact).max() < 1e-3
assert np.allclose(ipot(cost, n_iter=50).numpy(), ipot_reference(cost.numpy(), n_iter=50), atol=1e-10)

# %% [markdown]
# The cost is semantic: step i's *expected* label embedding Eᵀp_i against the
# gold label's embedding Eᵀ1_{y_j}, by cosine distance (cosdist below)
#
# $$c(p_i, y_j) = \operatorname{cosdist}(E^\top p_i,\, E^\top \mathbb{1}_{y_j})\qquad\text{(Eq. 15)},
#   \qquad \operatorname{cosdist}(x, y) = 1 - \frac{x^\top y}{\lVert x\rVert\lVert y\rVert}\qquad\text{(Eq. 16)}$$
#
# (`losses/set_loss.py::cosine_distance`), E being the label embeddings (the
# mean GloVe vector of each label's name in the paper). Γ is a constant (no
# gradient through IPOT) and E is detached in this term, so the gradient
# reaches the model through p_i only. The full objective is
#
# $$\mathcal{L} = \mathcal{L}_{match}(\hat y, p) + \lambda\,\mathcal{L}_{OT}(p, y),\qquad \lambda = 8
#   \qquad\text{(Eq. 17)}$$
#
# `losses/set_loss.py::set_loss` returns the named terms `{"loss", "match", "ot"}`.
# Below, 2-d embeddings where A and B are close and C is far: the OT term is
# small when the steps' mass sits near the gold labels and grows when it
# drifts to C, although C is not a gold label for any step.

# %%
E = torch.zeros(V, 2)  # (V, d=2) label embeddings
E[:N_SPECIAL] = torch.tensor([[0.1, 0.1]])  # specials: a neutral point
E[A], E[B], E[C] = torch.tensor([1.0, 0.2]), torch.tensor([0.9, 0.5]), torch.tensor([-0.8, 0.6])
expected = probs @ E  # (1, N=3, 2): E^T p_i
C_sem = cosine_distance(expected, E[gold])  # (1, N=3, n=2)
print("semantic cost C_ij (steps x gold labels A, B):\n", C_sem[0].numpy())
terms = set_loss(logp, gold, gold_mask, E, ot_weight=8.0)
plan = ipot(C_sem[0], torch.full((3,), 1 / 3), torch.full((2,), 1 / 2))
print(f"<C, Γ> by hand {float((C_sem[0] * plan).sum()):.4f}; set_loss: match {float(terms['match']):.4f}, "
      f"ot {float(terms['ot']):.4f}, loss = match + 8 ot = {float(terms['loss']):.4f}")
assert abs(float((C_sem[0] * plan).sum()) - float(terms["ot"])) < 1e-5
assert abs(float(terms["loss"]) - float(terms["match"] + 8 * terms["ot"])) < 1e-5

drift = probs.clone()
drift[0, 0] = 0.0
drift[0, 0, C] = 1.0  # step 1 now believes C, a label far from the gold ones
ot_drift = float(set_loss(torch.log(drift.clamp_min(1e-12)), gold, gold_mask, E)["ot"])
print(f"OT term with step 1 on C: {ot_drift:.4f} (was {float(terms['ot']):.4f})")
assert ot_drift > float(terms["ot"])

# %% [markdown]
# ## 6. LightConv: "label-level" vectors from the word-level states (Eq. 7)
#
# $$\lbrace \hat h_j\rbrace = \mathrm{LightConv}(\lbrace h_i\rbrace)\qquad\text{(Eq. 7)},\qquad
#   \mathrm{LightConv}(X, W)_{j,c} = \sum_{k=1}^{K}\mathrm{softmax}(W_{h(c)})_k\, X_{js + k - 1 - p_l,\,c}$$
#
# Four layers, kernels 3, 7, 15, 30, ReLU in between, stride 1 except the
# last (3; 4 for Wiki10-31K). Depth-wise (each channel on its own), weights
# shared by the channels of a head, each kernel a softmax (a convex
# combination of its window). ĉ_t attends over {ĥ_j} with the *same*
# attention parameters as c_t. Implementation: `models/lightconv.py::LightConv`
# (one grouped `conv1d` per layer) beside
# `models/lightconv.py::LightConvLayer.reference_forward` (a loop over output
# positions). The padding mask goes through the strides as mask[:, ::s]
# (`models/lightconv.py::LightConvLayer.output_mask`): a row of l real tokens
# keeps ⌈l/s⌉ real outputs.

# %%
lc = LightConv(channels=8, kernel_sizes=(3, 7, 15, 30), heads=2, last_stride=3)
x = torch.rand(2, 40, 8) + 0.1  # (B=2, S=40, C=8), positive so every ReLU passes the signal
mask = torch.arange(40)[None, :] < torch.tensor([[40], [17]])  # (B, S): lengths 40 and 17
hh, hh_mask = lc(x, mask)
print(f"in {tuple(x.shape)} -> out {tuple(hh.shape)}; real outputs per row {hh_mask.sum(1).tolist()} "
      f"(= ceil(40/3), ceil(17/3))")
print(f"parameters: {sum(p.numel() for p in lc.parameters())} (= heads x sum of kernels = 2 x 55)")

# receptive field of output j: the inputs with a nonzero gradient (a longer row, so nothing is clipped)
x1 = (torch.rand(1, 120, 8) + 0.1).requires_grad_(True)  # (1, S=120, C=8)
j = 20
lc(x1, torch.ones(1, 120, dtype=torch.bool))[0][0, j].sum().backward()
field = torch.nonzero(x1.grad[0].abs().sum(1)).flatten()
print(f"output {j} (centred on input {j * 3}) sees inputs {field.min().item()}..{field.max().item()}: "
      f"{len(field)} tokens = 1 + (3-1) + (7-1) + (15-1) + (30-1)")
assert len(field) == 1 + 2 + 6 + 14 + 29

# padding never leaks: change the padded tokens of row 2, its real outputs stay the same
x2 = x.clone()
x2[1, 17:] = 100.0
assert torch.equal(lc(x2, mask)[0][1, :6], hh[1, :6])
assert torch.allclose(lc.reference_forward(x, mask)[0], hh, atol=1e-6)

# %% [markdown]
# ## 7. The bottleneck output layer (Eq. 9-10)
#
# The output layer maps z = [s_t; c_t; ĉ_t; e(ȳ_{t−1})] to V scores:
#
# $$p_t = \mathrm{softmax}(W_o z)\quad\text{(Eq. 9)}\qquad\text{or}\qquad
#   p_t = \mathrm{softmax}\big(W_2 \tanh(W_1 z)\big)\quad\text{(Eq. 10)}$$
#
# with W_o ∈ ℝ^{V×z} against W_1 ∈ ℝ^{b×z}, W_2 ∈ ℝ^{V×b}: O(V z) parameters
# become O((V + z) b). `models/decoder.py::Bottleneck`; the config switch is
# `bottleneck=b` in `models/backbone.py::BackboneConfig`. Counted at the
# paper's sizes (hidden 512, so c_t and ĉ_t have 1024 each, 300-d label
# embeddings: z = 512 + 2·1024 + 300 = 2860), on the `meta` device so nothing
# is allocated:

# %%
z = 512 + 2 * 1024 + 300
rows = []
for dataset, n_labels, b in (("Wiki10-31K", 30_938, 300), ("Amazon-670K", 670_091, 512)):
    V_out = N_SPECIAL + n_labels
    with torch.device("meta"):
        full = sum(p.numel() for p in torch.nn.Linear(z, V_out).parameters())
        neck = sum(p.numel() for p in Bottleneck(z, b, V_out).parameters())
    assert neck == (V_out + z) * b + b + V_out
    rows.append([dataset, V_out, b, f"{full / 1e6:.1f}M", f"{neck / 1e6:.1f}M", f"{full / neck:.1f}x"])
table(["dataset", "V", "b", "full W_o (Eq. 9)", "bottleneck (Eq. 10)", "smaller by"], rows)

# %% [markdown]
# ## 8. All together: a few training steps
#
# `models/otseq2set.py::OTSeq2Set.compute_loss` is the whole training
# objective of a batch: student-forced decoding for N steps, matching,
# semantic OT, Eq. 17. A tiny model overfits one batch of the synthetic data
# in a few Adam steps; the engine (`xmtc/train/engine.py::fit`) adds the paper's
# recipe (cosine annealing, gradient clipping at 8, validation each epoch) and
# `examples/train_otseq2set.py` runs it on a real dataset. Its run directory
# can be drawn with `python examples/plots.py run RUN_DIR` (training curves,
# predicted vs gold label counts).

# %%
torch.manual_seed(0)
cfg = OTSeq2SetConfig(vocab_size=len(data.vocab), n_labels=data.n_labels, embed_dim=32, label_embed_dim=32,
                      hidden_size=32, encoder_layers=1, lightconv_heads=4, dropout=0.0,
                      n_steps=stats["max_labels"], ipot_iter=20)
model = OTSeq2Set(cfg)
batch = collate([SplitDataset(data.train, data.n_labels, max_src_len=40)[i] for i in range(12)])
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
rows = []
for step in range(1, 31):
    terms = model.compute_loss(batch)  # {"loss", "match", "ot"}
    optimizer.zero_grad()
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 8.0)
    optimizer.step()
    if step in (1, 10, 20, 30):
        rows.append([step] + [float(terms[k].detach()) for k in ("loss", "match", "ot")])
table(["step", "loss", "match (Eq. 13)", "ot (Eq. 14)"], rows)
model.eval()
pred = model.predict(batch)
gold_sets = [set(data.train.labels(i).tolist()) for i in range(12)]
f1 = evaluate(pred.labels, gold_sets, n_labels=data.n_labels)["micro_f1"]
print(f"micro-F1 on the batch it was trained on: {f1:.3f}")
assert rows[-1][1] < rows[0][1]


# %% tooling
# Renders this file as Markdown: prose from the [markdown] cells, code cells
# as Python blocks followed by what they print. Not part of the story above,
# and left out of the rendered page. `python examples/walkthrough.py
# --markdown docs/walkthrough.md` first runs the story as usual, then renders.
def render_markdown(source: str) -> str:
    """Markdown of a ``# %%`` script: prose, code and each code cell's output (cells run in order)."""
    import contextlib
    import io

    namespace = {"__name__": "__walkthrough__", "__file__": __file__}
    parts = []
    for header, body in split_cells(source):
        if header == "tooling":
            continue
        if header == "[markdown]":
            parts.append("\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body))
            continue
        code = "\n".join(body).strip("\n")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, __file__, "exec"), namespace)  # noqa: S102 - runs this file's own cells
        parts.append(f"```python\n{code}\n```")
        if buffer.getvalue().strip():
            parts.append(f"Output:\n\n```text\n{buffer.getvalue().rstrip()}\n```")
    note = "<!-- generated by `python examples/walkthrough.py --markdown docs/walkthrough.md`; edit the script -->"
    return note + "\n\n" + "\n\n".join(p.strip("\n") for p in parts) + "\n"


def split_cells(source: str) -> list[tuple[str, list[str]]]:
    """``(header, lines)`` per ``# %%`` cell; header is ``"[markdown]"``, ``"tooling"`` or ``""``."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append((line[4:].strip(), []))
        elif cells:
            cells[-1][1].append(line)
    return cells


if __name__ == "__main__":
    import argparse
    import pathlib

    parser = argparse.ArgumentParser(description="OTSeq2Set walkthrough (runs top to bottom).")
    parser.add_argument("--markdown", metavar="PATH", help="also write the rendered walkthrough (with outputs) here")
    args = parser.parse_args()
    if args.markdown:
        text = render_markdown(pathlib.Path(__file__).read_text(encoding="utf-8"))
        pathlib.Path(args.markdown).write_text(text, encoding="utf-8")
        print(f"wrote {args.markdown}")
