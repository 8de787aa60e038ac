"""Training under torchrun, for real: two CPU processes (gloo) launched as a user would, with hard timeouts.

Each launch costs a few seconds of imports per process, so these are few and marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

import pixelwise
from pixelwise.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

JOB = Path(__file__).with_name("torchrun_job.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # what the `torchrun` command runs


def environment() -> dict[str, str]:
    """This checkout's pixelwise on the path, one thread per process; gloo on the loopback interface, which
    every Linux machine has (gloo otherwise binds to the address the host name resolves to)."""
    source = str(Path(pixelwise.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env["OMP_NUM_THREADS"] = "1"
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


def launch(*arguments: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TORCHRUN, *map(str, arguments)], env=environment(), capture_output=True, text=True, timeout=timeout
    )


def job_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("torchrun_job", JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def on_two_machines(*arguments: str | Path) -> tuple[list[int], list[str]]:
    """``torchrun ARGUMENTS`` as two local agents of one process each, with a c10d rendezvous on 127.0.0.1:
    the same command on each "machine", as on two real ones. Their return codes and outputs."""
    rendezvous = f"--rdzv-backend c10d --rdzv-endpoint 127.0.0.1:{free_port()} --rdzv-id pixelwise-test".split()
    command = [*TORCHRUN, "--nnodes", "2", "--nproc-per-node", "1", *rendezvous, *map(str, arguments)]
    machines = [
        subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [machine.communicate(timeout=240)[0] for machine in machines]
    finally:
        for machine in machines:
            machine.kill()
    return [machine.returncode for machine in machines], outputs


def test_torchrun_trains_resumes_exactly_and_its_checkpoint_predicts(tmp_path: Path, unseen_dataset: Path) -> None:
    common = ["--standalone", "--nproc-per-node", "2", "-m", "pixelwise", "train", unseen_dataset]
    # a constant learning rate: a run of 1 epoch resumed to 2 then follows the schedule of 2 straight ones
    settings = ["--crop-size", "32", "--batch-size", "2", "--model-option", "width=8", "--schedule", "constant"]

    first = launch(*common, "--out", tmp_path / "run", "--epochs", "1", *settings)
    assert first.returncode == 0, first.stderr[-3000:]
    log = [line for line in first.stderr.splitlines() if line.strip() and not line.startswith(("*", "Setting OMP"))]
    # the plan from the data comes first (every process plans alike; the main one prints it), then torchrun's line
    assert log[0].startswith("plan from the data (") and sum("plan from the data" in line for line in log) == 1
    assert "torchrun: training on 2 processes (world size 2, gloo)" in log
    assert sum("training unet-small on" in line for line in log) == 1  # one process speaks
    assert first.stdout.count("best epoch 1") == 1
    run = tmp_path / "run"
    expected = {"config.yaml", "last.pt", "best.pt", "metrics.jsonl", "curves.png", "data_plan.json"}
    assert {path.name for path in run.iterdir()} == expected
    last = load_checkpoint(run / "last.pt")
    assert len(last.extra["rng"]) == 2  # each process's random streams, for an exact resume
    assert not any(key.startswith("module.") for key in last.state_dict)
    # 10 training images of the 12 (2 validate): 10 // (2 processes × batch 2) steps per epoch
    assert last.extra["iteration"] == 2 and last.metrics["num_images"] == 2

    resumed = launch(*common, "--out", run, "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1, 2]  # one line per epoch, not per process

    straight = launch(*common, "--out", tmp_path / "straight", "--epochs", "2", *settings)
    assert straight.returncode == 0, straight.stderr[-3000:]
    resumed_weights = weights(run / "last.pt")
    for name, tensor in weights(tmp_path / "straight" / "last.pt").items():
        assert torch.equal(tensor, resumed_weights[name]), name

    from pixelwise.inference.predictor import Predictor

    predictor = Predictor.load(run / "best.pt", tile_size=32, device="cpu")
    image = np.random.default_rng(0).random((40, 48), dtype=np.float32)
    labels = predictor.predict_labels(image)
    assert labels.shape == (40, 48) and labels.max() < 3


def test_two_machines_with_batch_4_train_like_one_process_with_batch_8(tmp_path: Path) -> None:
    """Two torchrun agents with a c10d rendezvous on 127.0.0.1 stand in for two machines of one process
    each; their run must match one process with the global batch (PyTorch's own DDP tests check the same)."""
    from pixelwise.models import registry

    job, create_model = job_module(), registry.create_model
    job.train(tmp_path / "one", batch_size=8)
    job.train(tmp_path / "half", batch_size=4)  # the control: one process with half the batch goes elsewhere
    assert registry.create_model is create_model  # the job's patch did not leak into the rest of the suite

    returncodes, outputs = on_two_machines(JOB, tmp_path / "two", "--batch-size", "4")
    assert returncodes == [0, 0], outputs

    one, two, half = (weights(tmp_path / name / "last.pt") for name in ("one", "two", "half"))
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, msg=name)
    assert not all(torch.allclose(half[name], tensor) for name, tensor in one.items())
    # validation: 3 images shared 1 + 2, each counted once, the same counts as one process
    histories = [load_checkpoint(tmp_path / name / "last.pt").extra["history"] for name in ("one", "two")]
    assert [record["val_num_images"] for record in histories[1]] == [3, 3]
    assert (
        load_checkpoint(tmp_path / "two" / "last.pt").metrics["confusion_matrix"]
        == load_checkpoint(tmp_path / "one" / "last.pt").metrics["confusion_matrix"]
    )
    for first, second in zip(*histories, strict=True):
        assert first["train_loss"] == pytest.approx(second["train_loss"], rel=1e-5)


def test_a_hung_process_makes_the_others_fail_within_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    result = launch(
        "--standalone", "--nproc-per-node", "2", JOB, tmp_path / "run", "--batch-size", "4", "--timeout", "5",
        "--hang-at", "2",
    )  # fmt: skip
    assert result.returncode != 0
    assert "pixelwise: error: process 0 of 2 lost the others (" in result.stderr
    assert "a process waits at most process_timeout = 5 s" in result.stderr
    # torchrun stopped the hung process once the other had failed, instead of waiting for its 600 s sleep
    assert time.monotonic() - started < 120


def test_a_process_that_dies_on_another_machine_stops_this_one_with_a_message(tmp_path: Path) -> None:
    """On one machine torchrun stops the others itself; across machines the survivor's next collective finds
    the connection gone and fails at once (no need to wait for the timeout, 60 s here)."""
    started = time.monotonic()
    returncodes, outputs = on_two_machines(JOB, tmp_path / "run", "--batch-size", "4", "--die-at", "2")
    assert all(code != 0 for code in returncodes)
    both = "\n".join(outputs)
    assert "pixelwise: error: process 0 of 2 lost the others (" in both
    assert time.monotonic() - started < 120
