"""Unit tests of the training engine: configs, checkpoints, RNG, samplers, prediction, fit."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from xmtc.train import checkpoint, distributed, engine, runtime

from xmtc.config import cli

from xmtc.data import loading

from xmtc import registry
from xmtc.run import train_run
from xmtc.config import FAST, PRESETS, ConfigError, RunConfig, compose, preset


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny_config(**train) -> RunConfig:
    cfg = compose("synthetic", fast=True, overrides={
        "data": {"max_train_docs": 160, "max_valid_docs": 40, "max_test_docs": 60},
        "train": {"epochs": 2, **train}})
    return cfg


@pytest.fixture(scope="module")
def tiny_data():
    return loading.load_data(tiny_config().data)


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("name,epochs,batch,lr,bottleneck,src,n,stride,scheme", [
    ("eurlex", 20, 32, 1e-3, None, 1000, 24, 3, "all"),
    ("wiki10", 15, 32, 1e-3, 300, 2000, 30, 4, "first_n"),
    ("amazoncat", 5, 64, 5e-4, None, 500, 57, 3, "first_n"),
    ("amazon670k", 20, 64, 5e-4, 512, 500, 7, 3, "all"),
])
def test_presets_are_table_2(name, epochs, batch, lr, bottleneck, src, n, stride, scheme):
    cfg = preset(name)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr) == (epochs, batch, lr)
    assert (cfg.net.bottleneck, cfg.data.max_src_len, cfg.net.n_steps) == (bottleneck, src, n)
    assert (cfg.net.last_stride, cfg.net.scheme) == (stride, scheme)
    # the common recipe of Section 3.4
    assert (cfg.train.grad_clip, cfg.train.init_range, cfg.net.dropout) == (8.0, 0.1, 0.2)
    # λ = 8, except Amazon-670K: the authors' final config has λ = 0 (docs/fidelity.md)
    ot_weight = 0.0 if name == "amazon670k" else 8.0
    assert (cfg.net.hidden_size, cfg.net.encoder_layers, cfg.net.ot_weight, cfg.net.empty_weight) == (512, 2, ot_weight, 0.2)
    assert cfg.net.use_lightconv is (False if name == "amazon670k" else None)


def test_every_dataset_has_a_preset_and_a_fast_preset():
    assert set(PRESETS) == set(FAST) == set(cli.DATASETS)
    for name in PRESETS:
        slow, fast = preset(name), preset(name, fast=True)
        assert fast.fast and fast.train.epochs <= slow.train.epochs
        assert fast.net.hidden_size < slow.net.hidden_size
    assert preset("eurlex57k").net.n_steps is None  # N from the data


def test_compose_order_preset_fast_overrides():
    cfg = compose("reuters", fast=True, overrides={"train": {"epochs": 7, "lr": None}, "net": {"scheme": "first_n"},
                                                   "out": "x"})
    assert cfg.train.epochs == 7  # the override wins
    assert cfg.train.lr == FAST["reuters"]["train"]["lr"]  # None = not given
    assert cfg.net.scheme == "first_n" and cfg.out == "x"
    assert compose(saved=json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("overrides", [
    {"train": {"epochs": 0}}, {"net": {"scheme": "some"}}, {"net": {"ot_weight": -1.0}},
    {"data": {"max_train_docs": 0}}, {"net": {"nope": 1}},
])
def test_compose_rejects_bad_settings(overrides):
    with pytest.raises(ConfigError):
        compose("synthetic", overrides=overrides)


def test_unknown_dataset_or_model():
    with pytest.raises(ConfigError, match="unknown dataset"):
        preset("imagenet")
    with pytest.raises(ConfigError, match="unknown model"):
        preset("reuters", model="bert")


def test_select_device():
    assert runtime.select_device("cpu") == torch.device("cpu")
    assert runtime.select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            runtime.select_device("cuda")
    with pytest.raises(ConfigError):
        runtime.select_device("tpu9")


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip_weights_only(tmp_path):
    state = {"model_type": "otseq2set", "model": {"w": torch.arange(3.0)}, "epoch": 2, "names": ["a", "b"],
             "nested": {"t": (1, 2.5, None, True)}, "rng": checkpoint.rng_state()}
    path = checkpoint.save(state, tmp_path / "c.pt")
    back = checkpoint.load(path, model_type="otseq2set")
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["nested"] == state["nested"]
    # readable by plain torch.load(weights_only=True): nothing pickled but tensors and containers
    assert torch.load(path, weights_only=True)["epoch"] == 2


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = checkpoint.save({"model_type": "sgm", "epoch": 1}, tmp_path / "c.pt")
    real_save = torch.save

    def crash(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        checkpoint.save({"model_type": "sgm", "epoch": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert checkpoint.load(path)["epoch"] == 1  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left


def test_checkpoint_errors(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(checkpoint.CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not an xmtc checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")
    checkpoint.save({"model_type": "seq2seq"}, tmp_path / "s.pt")
    with pytest.raises(checkpoint.CheckpointError, match="'seq2seq' model, not 'otseq2set'"):
        checkpoint.load(tmp_path / "s.pt", model_type="otseq2set")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_refuses_pickled_code(tmp_path):
    torch.save({"format": checkpoint.FORMAT, "payload": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(checkpoint.CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "evil.pt")


def test_rng_state_roundtrip(tmp_path):
    runtime.seed_everything(5)
    state = checkpoint.rng_state()
    checkpoint.save({"rng": state}, tmp_path / "r.pt")
    first = (random.random(), np.random.rand(), torch.rand(3))
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "r.pt")["rng"])
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


# --------------------------------------------------------------------------- batches and prediction
def test_sharded_batches_cover_each_global_batch_once():
    base = [[0, 1, 2, 3, 4], [5, 6, 7], [8]]
    shards = [list(distributed.ShardedBatchSampler(base, r, 2)) for r in range(2)]
    assert shards[0] == [[0, 2, 4], [5, 7], [8]] and shards[1] == [[1, 3], [6]]
    for g, batch in enumerate(base):
        got = sorted(i for s in shards for b in s for i in b if i in batch)
        assert got == batch
    # training: a global batch with fewer documents than ranks is left out on every rank, so that
    # every rank joins every step's gradient all-reduce (rank 1 used to run one step less and hang)
    train = [distributed.ShardedBatchSampler(base, r, 2, drop_short=True) for r in range(2)]
    assert [list(s) for s in train] == [[[0, 2, 4], [5, 7]], [[1, 3], [6]]]
    assert [len(s) for s in train] == [2, 2]
    assert [len(list(distributed.ShardedBatchSampler(base, r, 3, drop_short=True))) for r in range(3)] == [2, 2, 2]


def test_training_batches_depend_only_on_seed_and_epoch(tiny_data):
    t = tiny_config().train
    def order(epoch):
        return [b.index.tolist() for b in loading.make_loader(tiny_data, "train", t, train=True, epoch=epoch)]

    torch.rand(5)  # the global RNG does not matter
    assert order(1) == order(1) and order(0) != order(1)
    flat = sorted(i for b in order(0) for i in b)
    assert flat == list(range(len(tiny_data.train)))


def test_predict_returns_split_order(tiny_data):
    cfg = tiny_config()
    runtime.seed_everything(0)
    model = registry.build_model(cfg, tiny_data).eval()
    loader = loading.make_loader(tiny_data, "test", cfg.train)  # length-sorted batches
    pred = engine.predict(model, loader, device=torch.device("cpu"), n_docs=len(tiny_data.test), top_k=3)
    assert pred.top_ids.shape == (len(tiny_data.test), 3)
    from xmtc.data.batching import SplitDataset, collate

    ds = SplitDataset(tiny_data.test, tiny_data.n_labels, None, tiny_data.max_src_len)
    for i in (0, 7, len(ds) - 1):  # one document at a time, no padding
        single = model.predict(collate([ds[i]]))
        assert single.labels[0] == pred.labels[i]
        top = single.scores[0].topk(3)
        assert torch.allclose(top.values, torch.from_numpy(pred.top_scores[i]), atol=1e-5)


def test_n_steps_default_and_smaller_than_a_label_set(tiny_data):
    cfg = tiny_config()
    assert registry.build_model(cfg, tiny_data).config.n_steps == loading.max_labels(tiny_data)
    assert loading.max_labels(tiny_data) == max(len(d.labels) for d in tiny_data.train)
    # N below the largest label set: training keeps each document's first N labels
    cfg.net.n_steps = 2
    model = registry.build_model(cfg, tiny_data)
    assert loading.targets_truncated(tiny_data, 2) == sum(len(d.labels) > 2 for d in tiny_data.train) > 0
    loader = loading.make_loader(tiny_data, "train", cfg.train, train=True)
    batch = next(iter(loader))
    cut = loading.truncate_targets(batch, 2)
    assert cut.labels.shape[1] == 2 and torch.equal(cut.labels, batch.labels[:, :2])
    terms = engine.train_one_epoch(distributed.LossModule(model), loader, torch.optim.Adam(model.parameters()),
                                   device=torch.device("cpu"), max_targets=2)
    assert np.isfinite(terms["loss"])


def test_uniform_initialisation(tiny_data):
    cfg = tiny_config()
    model = registry.build_model(cfg, tiny_data)
    for name, p in model.named_parameters():
        assert p.abs().max() <= cfg.train.init_range + 1e-7, name


# --------------------------------------------------------------------------- fit
@pytest.mark.parametrize("model_name", ["otseq2set", "sgm"])
def test_fit_learns_and_keeps_the_best_epoch(tiny_data, model_name):
    cfg = tiny_config(epochs=3)
    cfg.model = model_name
    runtime.seed_everything(0)
    model = registry.build_model(cfg, tiny_data)
    result = engine.fit(model, tiny_data, cfg, device=torch.device("cpu"))
    losses = [r["train"]["loss"] for r in result.history]
    assert losses[-1] < losses[0]
    best = max(result.history, key=lambda r: r["valid"]["micro_f1"])
    assert result.best["epoch"] == best["epoch"]
    # the model now holds the best epoch's weights: validating again gives its score
    val, _ = engine.evaluate(model, tiny_data, "valid", cfg.train, device=torch.device("cpu"),
                             label_order=model.label_order)
    assert val["micro_f1"] == pytest.approx(best["valid"]["micro_f1"])
    lrs = [r["lr"] for r in result.history]
    assert lrs[0] == cfg.train.lr and lrs[1] < lrs[0]  # cosine annealing over the epochs


def test_grad_clip_is_applied(tiny_data):
    cfg = tiny_config()
    runtime.seed_everything(0)
    model = registry.build_model(cfg, tiny_data)
    loader = loading.make_loader(tiny_data, "train", cfg.train, train=True)
    seen = []
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    real_step = opt.step

    def step(*a, **k):
        seen.append(torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None]))
        return real_step(*a, **k)

    opt.step = step
    engine.train_one_epoch(distributed.LossModule(model), loader, opt, device=torch.device("cpu"), grad_clip=1e-3)
    assert seen and max(float(s) for s in seen) <= 1e-3 * 1.001


def test_load_embeddings_sets_dims(tiny_data, tmp_path):
    words = tiny_data.vocab.itos[2:12]
    lines = [f"{w} " + " ".join(f"{(i + j) / 10:.1f}" for j in range(6)) for i, w in enumerate(words)]
    lines.append("label " + " ".join(["0.5"] * 6))
    (tmp_path / "g.txt").write_text("\n".join(lines) + "\n")
    cfg = tiny_config()
    cfg.data.embeddings = str(tmp_path / "g.txt")
    emb = loading.load_embeddings(cfg, tiny_data)
    assert cfg.net.embed_dim == 6 and cfg.net.label_embed_dim == 6
    model = registry.build_model(cfg, tiny_data, emb)
    row = tiny_data.vocab.stoi[words[3]]
    assert torch.allclose(model.encoder.embedding.weight[row], torch.tensor([(3 + j) / 10 for j in range(6)]))
    assert emb.labels.shape == (tiny_data.n_labels, 6)


def test_train_run_refused_resume_leaves_the_config_record(tmp_path):
    cfg = tiny_config(epochs=1)
    train_run(cfg, out_dir=tmp_path)
    before = (tmp_path / "config.json").read_text()
    other = tiny_config(epochs=1, lr=0.5)  # not the settings the checkpoint was made with
    with pytest.raises(checkpoint.CheckpointError, match="other settings"):
        train_run(other, out_dir=tmp_path, resume=True)
    assert (tmp_path / "config.json").read_text() == before


def test_training_batch_smaller_than_the_world_is_refused(tiny_data):
    # every global batch would be "short" and skipped: an epoch of no steps, reported as normal
    cfg = tiny_config(batch_size=1)
    with pytest.raises(ConfigError, match="smaller than the 2 processes"):
        loading.make_loader(tiny_data, "train", cfg.train, train=True, dist=distributed.DistContext(0, 2))
    loading.make_loader(tiny_data, "valid", cfg.train, dist=distributed.DistContext(0, 2))  # evaluation is fine


def test_train_one_epoch_takes_a_bare_model(tiny_data):
    cfg = tiny_config(epochs=1)
    model = registry.build_model(cfg, tiny_data)
    loader = loading.make_loader(tiny_data, "train", cfg.train, train=True)
    out = engine.train_one_epoch(model, loader, torch.optim.Adam(model.parameters(), lr=1e-3),
                                 device=torch.device("cpu"))
    assert out["docs"] == len(tiny_data.train) and torch.isfinite(torch.tensor(out["loss"]))


def test_resume_after_a_stop_between_checkpoint_and_best_file(tiny_data, tmp_path):
    cfg = tiny_config(epochs=1)
    runtime.seed_everything(0)
    model = registry.build_model(cfg, tiny_data)
    engine.fit(model, tiny_data, cfg, device=torch.device("cpu"), out_dir=tmp_path)
    state = checkpoint.load(tmp_path / "checkpoint.pt")
    assert state["best"]["epoch"] == state["epoch"] == 1
    (tmp_path / "best.pt").unlink()  # stopped after checkpoint.pt, before best.pt
    fresh = registry.build_model(cfg, tiny_data)
    opt = torch.optim.Adam(fresh.parameters())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1)
    _, best, _ = engine.restore(tmp_path, fresh, opt, sched, cfg)
    assert all(torch.equal(best[k], v) for k, v in state["model"].items())
    # a best.pt of another epoch is not taken for the best weights
    stale = dict(state, epoch=0)
    checkpoint.save(stale, tmp_path / "best.pt")
    _, best, _ = engine.restore(tmp_path, fresh, opt, sched, cfg)
    assert all(torch.equal(best[k], v) for k, v in state["model"].items())


def test_a_checkpoint_older_than_a_setting_resumes_with_its_default():
    from xmtc.train.run_state import check_resumable

    cfg = preset("synthetic", fast=True)
    old = cfg.to_dict()
    del old["train"]["compile"]  # written before train.compile existed
    check_resumable({"config": old}, cfg)
    cfg.train.compile = True  # a speed setting: may change on resume
    check_resumable({"config": old}, cfg)
    cfg.train.lr *= 2
    with pytest.raises(checkpoint.CheckpointError, match=r"train\.lr"):
        check_resumable({"config": old}, cfg)
