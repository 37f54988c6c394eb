"""The CPU thread policy: CNNLAB_THREADS, and the tuner that re-picks the thread count by timing steps."""
import json
import time

import torch

from cnnlab.runtime.threads import ThreadTuner, apply_thread_policy, thread_count_fixed


def test_cnnlab_threads_sets_openmp_unless_the_user_did():
    env = {"CNNLAB_THREADS": "1"}
    apply_thread_policy(env)
    assert env == {"CNNLAB_THREADS": "1", "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env = {"CNNLAB_THREADS": "1", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}
    apply_thread_policy(env)
    assert env["OMP_NUM_THREADS"] == "2" and env["OMP_WAIT_POLICY"] == "ACTIVE"
    assert thread_count_fixed({"OMP_NUM_THREADS": "4"}) and thread_count_fixed({"CNNLAB_THREADS": "2"})
    assert not thread_count_fixed({})


FAST_ALL = {4: 0.004, 2: 0.012, 1: 0.024}  # seconds a step takes at each thread count (a quiet machine)
FAST_ONE = {4: 0.024, 2: 0.012, 1: 0.004}  # a busy one


def _drive(tuner, step_seconds, steps):
    """Run ``steps`` fake training steps whose duration depends on the thread count set."""
    for _ in range(steps):
        tuner()
        time.sleep(step_seconds[tuner.threads_now])


class _Recorder(ThreadTuner):
    def __init__(self, cores, **kw):
        self.threads_now, self.calls = cores, []
        super().__init__(cores, set_threads=self._set, **kw)

    def _set(self, n):
        self.threads_now = n
        self.calls.append(n)


def test_the_tuner_keeps_the_fastest_count_and_probes_again_later():
    quiet = _Recorder(4, every=0.5, probe=3, warmup=1)  # all cores fastest
    _drive(quiet, FAST_ALL, 14)
    assert quiet.candidates == [4, 2, 1] and quiet.history[0] == 4 and quiet.threads_now == 4
    busy = _Recorder(4, every=0.5, probe=3, warmup=1)  # a busy machine: one thread fastest
    _drive(busy, FAST_ONE, 14)
    assert busy.history[0] == 1 and busy.threads_now == 1
    _drive(busy, FAST_ALL, 3)  # nothing probed before `every` has passed
    assert busy.threads_now == 1
    time.sleep(0.6)
    _drive(busy, FAST_ALL, 14)  # the machine got quiet: the next round sees it
    assert busy.history[-1] == 4 and busy.threads_now == 4


def test_rounds_that_repeat_their_choice_come_less_often():
    t = _Recorder(2, every=0.01, probe=3, warmup=0, longest=0.04)
    waits = []
    for _ in range(6):  # six rounds on an unchanging machine
        while len(t.history) == len(waits):
            _drive(t, {2: 0.004, 1: 0.024}, 1)
        waits.append(t.wait)
        time.sleep(t.wait)
    assert t.history == [2] * 6 and waits == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04]
    time.sleep(t.wait)
    n = len(t.history)
    while len(t.history) == n:  # the machine got busy: the choice changes, the wait starts again
        _drive(t, {2: 0.024, 1: 0.004}, 1)
    assert t.history[-1] == 1 and t.wait == 0.01


def test_validation_time_is_not_counted():
    t = _Recorder(2, every=10.0, probe=2, warmup=0)
    t()                       # step 1 (2 threads, not counted: the first after a switch)
    time.sleep(0.001)
    t()                       # step 2 at 2 threads...
    time.sleep(0.001)
    t.pause()                 # ...then the epoch ended: validation took long
    time.sleep(0.05)
    t()
    assert all(s < 0.04 for times in t.times.values() for s in times)


def test_training_restores_the_thread_count_and_deterministic_runs_keep_it(tmp_path, monkeypatch):
    import cnnlab
    from cnnlab.engine import trainer

    before = torch.get_num_threads()
    seen = []
    monkeypatch.delenv("CNNLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    real_setup = trainer.setup

    def spy(*a, **k):
        run = real_setup(*a, **k)
        seen.append(run.threads)
        return run

    monkeypatch.setattr(trainer, "setup", spy)
    common = dict(data="digits", epochs=1, batch_size=256, plots=False, log=None, workers=0)
    cnnlab.train(out=str(tmp_path / "a"), **common)
    cnnlab.train(out=str(tmp_path / "b"), deterministic=True, **common)
    monkeypatch.setenv("CNNLAB_THREADS", "1")
    cnnlab.train(out=str(tmp_path / "c"), **common)
    assert (seen[0] is not None) == (before > 1) and seen[1] is None and seen[2] is None
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["epochs"][0]["threads"] == 1
    assert torch.get_num_threads() == before
