"""Mid-epoch checkpoints and exact resume (``xmtc.train.stopping``, ``xmtc.train.engine.fit``).

The reference is the same run without interruption (same seed): a run stopped
by SIGINT / SIGTERM at the first, a middle or the last batch of an epoch, or
during validation, and resumed, must end with bit-identical parameters (last
and best epoch), the same epoch records (but their timings) and the same test
metrics, having trained only the batches after the interruption. Also checked:
interval checkpoints at the interval (a fake clock), a checkpoint written
before positions existed, the handlers' lifetime, a second signal while saving,
what the script prints and its exit codes (a real process), the removal of a
run directory that a run created and left without a checkpoint, and two
torchrun-style processes (gloo).
"""

from __future__ import annotations

import datetime
import json
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from xmtc.train import checkpoint, engine, runtime, stopping

from xmtc.config import cli

from xmtc.data import loading

from xmtc import registry
from xmtc import run as whole_run
from xmtc.config import compose
from xmtc.train.stopping import Interrupted, SavePoint

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
N_BATCHES = 6  # 96 training documents in batches of 16
_TIMINGS = {"time_s", "docs_per_s", "valid_time_s"}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny_config(**train):
    return compose("synthetic", fast=True, overrides={
        "data": {"max_train_docs": 96, "max_valid_docs": 40, "max_test_docs": 40},
        "train": {"epochs": 2, "batch_size": 16, **train}})


@pytest.fixture(scope="module")
def data():
    return loading.load_data(tiny_config().data)


class Recorder(engine.Callbacks):
    """Records (epoch, step) of every batch and the interval checkpoints; ``stop`` sends a signal at a batch."""

    def __init__(self, stop_at=None, signum=signal.SIGTERM, clock=None):
        self.stop_at, self.signum, self.clock = stop_at, signum, clock
        self.batches, self.checkpoints, self.resumed = [], [], []

    def on_batch(self, epoch, step, n_batches, terms, docs_per_s):
        self.batches.append((epoch, step))
        if self.clock is not None:
            self.clock.now += 25.0  # every batch "takes" 25 s
        if (epoch, step) == self.stop_at:
            signal.raise_signal(self.signum)  # delivered to the engine's handler before the next bytecode

    def on_epoch_resume(self, epoch, batch, n_batches):
        self.resumed.append((epoch, batch, n_batches))

    def on_checkpoint(self, saved):
        self.checkpoints.append(saved)


def train(cfg, data, out, callbacks=None, resume=False):
    runtime.seed_everything(cfg.train.seed)
    model = registry.build_model(cfg, data)
    result = engine.fit(model, data, cfg, device=CPU, out_dir=out, resume=resume, callbacks=callbacks)
    test, _ = engine.evaluate(model, data, "test", cfg.train, device=CPU, label_order=model.label_order)
    return result, test


def without_timings(record):
    return {k: (without_timings(v) if isinstance(v, dict) else v) for k, v in record.items() if k not in _TIMINGS}


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def assert_same_run(a, b):
    """``a``, ``b``: (run directory, FitResult, test metrics). Bit-identical but for timings."""
    (dir_a, fit_a, test_a), (dir_b, fit_b, test_b) = a, b
    assert test_a == test_b
    assert [without_timings(r) for r in fit_a.history] == [without_timings(r) for r in fit_b.history]
    assert fit_a.best == fit_b.best
    for name in ("checkpoint.pt", "best.pt"):
        wa, wb = weights(dir_a / name), weights(dir_b / name)
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), (name, k)


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    rec = Recorder()
    result, test = train(tiny_config(), data, out, rec)
    assert len(rec.batches) == 2 * N_BATCHES
    return out, result, test, rec.batches


# --------------------------------------------------------------------------- stop and resume
@pytest.mark.parametrize("stop_at, signum", [
    ((1, 1), signal.SIGTERM),  # the first batch of the run
    ((1, 3), signal.SIGINT),  # a middle batch
    ((1, N_BATCHES), signal.SIGTERM),  # the last batch of an epoch (before its validation)
    ((2, 4), signal.SIGINT),  # a middle batch of a later epoch
])
def test_stop_at_a_batch_and_resume_equals_the_uninterrupted_run(data, straight, tmp_path, stop_at, signum):
    straight_dir, straight_fit, straight_test, straight_batches = straight
    stopper = Recorder(stop_at, signum)
    with pytest.raises(Interrupted) as info:
        train(tiny_config(), data, tmp_path, stopper)
    e = info.value
    assert e.signum == signum and e.exit_code == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    assert stopper.batches[-1] == stop_at  # the batch being trained was finished, no further one started
    epoch, batch = stop_at
    assert e.saved == SavePoint(tmp_path / "checkpoint.pt", epoch, batch, N_BATCHES, validated=False)
    state = checkpoint.load(tmp_path / "checkpoint.pt")
    assert state["epoch"] == epoch - 1 and state["position"]["batch"] == batch
    assert [r["epoch"] for r in state["history"]] == list(range(1, epoch))
    assert not list(tmp_path.glob("*.tmp"))

    resumer = Recorder()
    result, test = train(tiny_config(), data, tmp_path, resumer, resume=True)
    # only the batches after the interruption were trained, in the uninterrupted order
    assert resumer.batches == straight_batches[straight_batches.index(stop_at) + 1:]
    assert resumer.resumed == [(epoch, batch, N_BATCHES)]
    assert result.resumed_from == epoch - 1
    assert_same_run((straight_dir, straight_fit, straight_test), (tmp_path, result, test))


class _SignalInValidation(Recorder):
    def on_eval_start(self, split, n_batches):
        if split == "valid" and not hasattr(self, "sent"):
            self.sent = True
            signal.raise_signal(signal.SIGINT)


def test_stop_during_validation_saves_the_epoch_and_validates_on_resume(data, straight, tmp_path):
    with pytest.raises(Interrupted) as info:
        train(tiny_config(), data, tmp_path, _SignalInValidation())
    assert info.value.saved.describe() == f"epoch 1, batch {N_BATCHES}/{N_BATCHES}, before its validation"
    resumer = Recorder()
    result, test = train(tiny_config(), data, tmp_path, resumer, resume=True)
    assert resumer.batches == [(2, s) for s in range(1, N_BATCHES + 1)]  # epoch 1 validated, not retrained
    assert_same_run(straight[:3], (tmp_path, result, test))


def test_a_second_signal_while_saving_does_not_corrupt_the_checkpoint(data, straight, tmp_path, monkeypatch):
    real_save = torch.save
    seen = []

    def save_interrupted(obj, f, *a, **k):
        if "position" in obj and obj["position"]["epoch"] > obj["epoch"]:  # the mid-epoch checkpoint
            signal.raise_signal(signal.SIGINT)  # Ctrl-C again, in the middle of its write
            seen.append(obj["position"]["batch"])
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_interrupted)
    with pytest.raises(Interrupted) as info:
        train(tiny_config(), data, tmp_path, Recorder((2, 2), signal.SIGINT))
    monkeypatch.setattr(torch, "save", real_save)
    assert seen == [2] and info.value.saved.batch == 2
    result, test = train(tiny_config(), data, tmp_path, resume=True)
    assert_same_run(straight[:3], (tmp_path, result, test))


def test_a_callbacks_keyboard_interrupt_stops_at_once_naming_the_last_checkpoint(data, tmp_path):
    class Raise(engine.Callbacks):
        def on_batch(self, epoch, step, n_batches, terms, docs_per_s):
            if (epoch, step) == (2, 3):
                raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        train(tiny_config(), data, tmp_path, Raise())
    assert info.value.saved == SavePoint(tmp_path / "checkpoint.pt", 1, N_BATCHES, N_BATCHES, validated=True)
    assert checkpoint.load(tmp_path / "checkpoint.pt")["epoch"] == 1  # nothing written for (2, 3)


def test_handlers_only_while_fitting_and_only_in_the_main_thread(data):
    before = {s: signal.getsignal(s) for s in stopping.SIGNALS}
    seen = {}

    class Look(engine.Callbacks):
        def on_batch(self, epoch, step, n_batches, terms, docs_per_s):
            seen.update({s: signal.getsignal(s) for s in stopping.SIGNALS})

    cfg = tiny_config(epochs=1)
    runtime.seed_everything(0)
    engine.fit(registry.build_model(cfg, data), data, cfg, device=CPU, callbacks=Look())
    assert all(seen[s] is not before[s] for s in stopping.SIGNALS)  # the engine's own while training
    assert {s: signal.getsignal(s) for s in stopping.SIGNALS} == before  # and the previous ones after
    # outside the main thread nothing is installed (signal.signal would raise there)
    errors = []

    def in_thread():
        try:
            with stopping.StopSignals() as stop:
                stop.request(signal.SIGTERM)
                errors.append(stop.requested)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert errors == [signal.SIGTERM]


def test_a_stop_before_the_first_batch_saves_nothing(data, tmp_path):
    class Early(engine.Callbacks):
        def on_fit_start(self, start_epoch, epochs, n_batches):
            signal.raise_signal(signal.SIGINT)

        def on_batch(self, *args):
            raise AssertionError("no batch may start after the stop")

    with pytest.raises(Interrupted) as info:
        train(tiny_config(), data, tmp_path, Early())
    assert info.value.saved is None and not (tmp_path / "checkpoint.pt").exists()


# --------------------------------------------------------------------------- interval checkpoints
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_interval_checkpoints_when_the_interval_elapses(data, straight, tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(stopping, "monotonic", clock)
    copies = tmp_path / "copies"

    class Keep(Recorder):  # a SIGKILL right after each interval checkpoint leaves that file
        def on_checkpoint(self, saved):
            super().on_checkpoint(saved)
            shutil.copytree(saved.path.parent, copies / f"{saved.epoch}-{saved.batch}",
                            ignore=shutil.ignore_patterns("copies"))

    rec = Keep(clock=clock)
    out = tmp_path / "run"
    result, test = train(tiny_config(checkpoint_interval=1.0), data, out, rec)
    # 25 s per batch, 60 s interval: due after batch 3 (75 s); then 50 s at batch 5, 75 s at batch 6,
    # which ends the epoch (its own checkpoint, the clock starts again); in epoch 2 again after batch 3
    assert [(c.epoch, c.batch, c.validated) for c in rec.checkpoints] == [(1, 3, False), (2, 3, False)]
    assert_same_run(straight[:3], (out, result, test))  # saving changed nothing

    killed = copies / "2-3"
    assert checkpoint.load(killed / "checkpoint.pt")["position"]["batch"] == 3
    resumer = Recorder()
    result, test = train(tiny_config(checkpoint_interval=1.0), data, killed, resumer, resume=True)
    assert resumer.batches == [(2, s) for s in range(4, N_BATCHES + 1)]
    assert_same_run(straight[:3], (killed, result, test))


def test_interval_zero_checkpoints_at_epoch_ends_only(data, tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(stopping, "monotonic", clock)
    rec = Recorder(clock=clock)
    train(tiny_config(epochs=1, checkpoint_interval=0.0), data, tmp_path, rec)
    assert len(rec.batches) == N_BATCHES and rec.checkpoints == []


# --------------------------------------------------------------------------- older checkpoints
def test_a_checkpoint_without_a_position_resumes_at_the_next_epoch(data, straight, tmp_path):
    class AfterEpoch1(engine.Callbacks):
        def on_epoch_end(self, record):
            if record["epoch"] == 1:
                raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(tiny_config(), data, tmp_path, AfterEpoch1())
    state = checkpoint.load(tmp_path / "checkpoint.pt")
    assert state["position"] == {"epoch": 1, "batch": N_BATCHES, "n_batches": N_BATCHES, "global_batch": N_BATCHES}
    for key in ("position", "rng_ranks", "world_size", "counters"):  # as written before mid-epoch checkpoints
        state.pop(key, None)
    checkpoint.save(state, tmp_path / "checkpoint.pt")
    assert stopping.save_point(state, tmp_path).describe() == "end of epoch 1"
    resumer = Recorder()
    result, test = train(tiny_config(), data, tmp_path, resumer, resume=True)
    assert resumer.batches == [(2, s) for s in range(1, N_BATCHES + 1)] and resumer.resumed == []
    assert_same_run(straight[:3], (tmp_path, result, test))


def test_skipped_batches_are_the_first_of_the_regenerated_order(data):
    t = tiny_config().train
    full = [b.index.tolist() for b in loading.make_loader(data, "train", t, train=True, epoch=1)]
    rest = loading.make_loader(data, "train", t, train=True, epoch=1, start=4)
    assert len(rest) == len(full) - 4 and [b.index.tolist() for b in rest] == full[4:]
    # under 2 ranks: a global batch too short for the ranks counts in the global position
    from xmtc.train.distributed import ShardedBatchSampler

    base = [[0, 1, 2, 3], [4], [5, 6], [7, 8, 9]]
    rank0 = ShardedBatchSampler(base, 0, 2, drop_short=True)
    assert [rank0.base_batches(k) for k in range(4)] == [0, 1, 3, 4]


# --------------------------------------------------------------------------- the script's side
def test_interrupt_message_names_what_was_saved_and_the_command(capsys, tmp_path):
    saved = SavePoint(tmp_path / "checkpoint.pt", 2, 37, 125, validated=False)

    def stopped(argv):
        raise Interrupted(signal.SIGTERM, saved)

    argv = ["--data", "reuters", "--out", str(tmp_path), "--overwrite"]
    assert cli.run_main(stopped, argv, prog="train_otseq2set.py") == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"train_otseq2set.py: interrupted by SIGTERM; saved epoch 2, batch 37/125 to {saved.path}",
                   f"train_otseq2set.py: continue with: python train_otseq2set.py --data reuters --out {tmp_path} "
                   f"--resume"]
    # --resume given: kept once
    assert cli.resume_command(["--out", "x", "--resume"], "t.py") == "python t.py --out x --resume"

    def nothing(argv):
        raise Interrupted(signal.SIGINT, None)

    assert cli.run_main(nothing, argv, prog="train_otseq2set.py") == 130
    err = capsys.readouterr().err.strip()
    assert err == ("train_otseq2set.py: interrupted by SIGINT before anything was saved: no checkpoint, "
                   "nothing to resume")
    assert "--resume" not in err


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("examples/train_otseq2set.py")


SYNTH = ["--data", "synthetic", "--fast", "--epochs", "2", "--max-train-docs", "96", "--batch-size", "16",
         "--max-valid-docs", "40", "--max-test-docs", "40", "--progress", "lines", "--log-interval", "1000"]


def test_a_failed_run_removes_the_run_directory_it_created(script, tmp_path, monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(whole_run, "load_data", boom)
    out = tmp_path / "new"
    with pytest.raises(RuntimeError, match="boom"):
        script.main(SYNTH + ["--out", str(out)])
    assert not out.exists()
    # a directory that existed before the run is left in place
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="boom"):
        script.main(SYNTH + ["--out", str(existing)])
    assert (existing / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_while_loading_data_removes_the_directory_and_promises_nothing(script, tmp_path, monkeypatch,
                                                                                   capsys, signum):
    # Python's own Ctrl-C handler, as in a foreground process (a shell that starts the suite in the
    # background, e.g. under nohup, makes it inherit SIGINT ignored, and Python then installs none)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        monkeypatch.setattr(whole_run, "load_data", lambda *a, **k: signal.raise_signal(signum))
        out = tmp_path / "run"
        assert script.main(SYNTH + ["--out", str(out)]) == 128 + signum
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err.strip()
    assert err == (f"train_otseq2set.py: interrupted by {signal.Signals(signum).name} before anything was saved: "
                   f"no checkpoint, nothing to resume (removed the run directory {out} it had created)")
    assert not out.exists()


def test_interrupted_in_the_test_evaluation_continues_from_the_last_epoch(script, tmp_path, monkeypatch, capsys):
    real = whole_run.evaluate  # the test evaluation of xmtc.run.train_run

    def evaluate(model, dataset, split, *a, **k):
        if split == "test":
            raise KeyboardInterrupt
        return real(model, dataset, split, *a, **k)

    monkeypatch.setattr(whole_run, "evaluate", evaluate)
    out = tmp_path / "run"
    assert script.main(SYNTH + ["--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"train_otseq2set.py: interrupted by SIGINT; saved epoch 2, batch {N_BATCHES}/{N_BATCHES}, "
                      f"end of the epoch to {out / 'checkpoint.pt'}")
    assert err[1].endswith(" --resume") and f"--out {out}" in err[1]
    monkeypatch.setattr(whole_run, "evaluate", real)
    assert script.main(SYNTH + ["--out", str(out), "--resume"]) == 0  # no training left: the test evaluation
    assert "test" in json.loads((out / "metrics.json").read_text())


# one real process in the quick tier; SIGINT's handling is the same code, checked in-process above
@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, marks=pytest.mark.slow), signal.SIGTERM])
def test_a_real_process_exits_130_or_143_with_a_checkpoint(tmp_path, signum):
    out = tmp_path / "run"
    argv = [sys.executable, str(REPO / "examples" / "train_otseq2set.py"), "--data", "synthetic", "--fast",
            "--set", "data.options.n_docs=400", "--max-train-docs", "300", "--batch-size", "4", "--epochs", "1",
            "--progress", "lines", "--log-batches", "1", "--log-interval", "1000", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        for line in proc.stdout:
            if " batch 2/" in line:  # training has started: stop it
                proc.send_signal(signum)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    state = checkpoint.load(out / "checkpoint.pt")
    k, n = state["position"]["batch"], state["position"]["n_batches"]
    assert state["epoch"] == 0 and 2 <= k < n
    lines = err.strip().splitlines()
    assert lines[-2] == (f"train_otseq2set.py: interrupted by {signal.Signals(signum).name}; saved epoch 1, "
                         f"batch {k}/{n} to {out / 'checkpoint.pt'}")
    assert lines[-1] == "train_otseq2set.py: continue with: " + shlex.join(["python", *argv[1:], "--resume"])


# --------------------------------------------------------------------------- two processes (torchrun, gloo)
TIMEOUT = datetime.timedelta(seconds=60)


def ddp_config(out):
    cfg = compose("synthetic", fast=True, overrides={
        "data": {"max_train_docs": 48, "max_valid_docs": 24, "max_test_docs": 24},
        "net": {"dropout": 0.2},  # each rank draws its own dropout masks: every rank's RNG must come back
        "train": {"epochs": 2, "batch_size": 8, "eval_batch_size": 16}, "out": str(out)})
    return cfg


def _ddp_worker(rank: int, world: int, init_file: str, root: str):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        results = {}
        for name, stop_at in (("straight", None), ("stopped", (2, 2))):
            cfg = ddp_config(f"{root}/{name}")
            data = loading.load_data(cfg.data, seed=cfg.train.seed)
            # only rank 0 gets the signal; the ranks agree to stop at the same batch
            rec = Recorder(stop_at if rank == 0 else None, signal.SIGTERM)
            try:
                results[name] = train(cfg, data, cfg.out, rec)[1]
            except Interrupted as e:
                results["interrupted"] = [e.exit_code, e.saved.epoch, e.saved.batch, rec.batches[-1]]
                results["resumed"] = train(cfg, data, cfg.out, Recorder(), resume=True)[1]
        with open(f"{root}/rank{rank}.json", "w") as f:
            json.dump(results, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_processes_stop_together_and_resume_exactly(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # both ranks stopped after the same batch, with SIGTERM's code, though only rank 0 got it
    assert ranks[0]["interrupted"] == ranks[1]["interrupted"] == [143, 2, 2, [2, 2]]
    state = checkpoint.load(tmp_path / "stopped" / "checkpoint.pt")
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    for r in ranks:
        assert r["resumed"] == r["straight"]  # test metrics
    for name in ("checkpoint.pt", "best.pt"):
        a, b = weights(tmp_path / "straight" / name), weights(tmp_path / "stopped" / name)
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
