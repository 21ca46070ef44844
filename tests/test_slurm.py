"""The workflow through a real SLURM: a single-node cluster brought up on this machine from Debian's
packages (munge, slurmctld, slurmd, slurm-client), the reduced demo run with `--profile profiles/slurm`,
then the daemons this test started stopped by PID and every file it wrote removed.

Needs root and apt (CI has both); skipped with the reason otherwise, and under CI (`CI=true`) that skip
is a failure. The node declares two GPUs backed by /dev/zero and /dev/null, so `--gpus=1` jobs run on a
machine without one (they see CUDA_VISIBLE_DEVICES and TensorFlow falls back to the CPU), two at a time
(`--resources gpu=2` lifts the workflow profile's cap of one). The profile's groups make a fold's training
one job and a few subjects' preprocessing one, and the cheap rules run outside SLURM (localrules): each job
pays submission and status polling (the executor waits 10 s longer after every round of checks that saw
no job end). Without accounting, the
executor sees finished jobs through squeue (`--slurm-status-command squeue`) while slurmctld keeps them
listed (MinJobAge). The configuration must sit at the default /etc/slurm/slurm.conf: the executor's job
step drops SLURM_* variables (SLURM_CONF included) before its inner srun. An existing slurm.conf that this
test did not write is left alone and the test is skipped. The test runs a munged of its own (its key,
socket, PID, log and seed file in one temporary folder, named in slurm.conf's AuthInfo), so it neither
needs nor touches the system's /etc/munge or /run/munge.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, skip_unless_ci
from test_envs import rules
from test_workflow import SNAKEMAKE, planned_jobs, small_config

PACKAGES = {"munge": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}
CLIENT = "/usr/bin/sbatch"  # slurm-client
GPU_RULES = ("train_spatial", "train_temporal", "train_deep_peer")


def local_rules() -> set[str]:
    """The rules the Snakefile's localrules directive keeps off the cluster."""
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (REPO / "Snakefile").read_text(), re.MULTILINE)
    return {line.strip(" ,") for line in block.group(1).splitlines()}


def profile_groups() -> tuple[dict[str, str], dict[str, int]]:
    """rule -> group, and group -> units per cluster job, of profiles/slurm."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    group_of = dict(entry.split("=") for entry in profile["groups"])
    return group_of, {group: int(n) for group, n in (entry.split("=") for entry in profile["group-components"])}


def test_exactly_the_gpu_rules_declare_a_gpu():
    """What the SLURM run below checks on the submitted jobs, checked on the rule files."""
    assert {name for name, rule in rules().items() if "gpu=1," in rule["body"]} == set(GPU_RULES)


def test_the_slurm_profile_gives_jobs_its_default_resources_and_threads_decide_cpus(tmp_path):
    """A dry run through the profile (no cluster needed): the workflow profile applies too, whatever
    the working directory, and rules without resources of their own get the profile's defaults."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(tmp_path), "--profile", str(REPO / "profiles" / "slurm"), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "workflow specific profile" in out and str(Path("profiles") / "default") in out
    jobs = {block.split(":")[0]: block for block in re.split(r"\n(?:rule|checkpoint) ", out)[1:]}
    defaults = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())["default-resources"]
    assert "cpus_per_task" not in defaults  # --cpus-per-task follows each rule's threads
    for resource in ("mem_mb", "runtime"):
        assert f"{resource}={defaults[resource]}" in jobs["build_index"], jobs["build_index"]
    assert "threads: 2" in jobs["synthesize_corpus"]


def run(*command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, **kwargs)


def install_slurm() -> None:
    missing = [package for package, binary in PACKAGES.items() if not Path(binary).exists()]
    missing += ["slurm-client"] if not Path(CLIENT).exists() else []
    if not missing:
        return
    if os.geteuid() != 0:
        skip_unless_ci(f"SLURM packages {missing} are not installed and the test is not root to install them")
    if not shutil.which("apt-get"):
        skip_unless_ci(f"SLURM packages {missing} are not installed and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env, timeout=600)
    run("apt-get", "install", "-y", "-qq", *missing, env=env, timeout=900)


CONF_DIR = Path("/etc/slurm")
GPU_DEVICES = ("/dev/zero", "/dev/null")  # stand-ins for GPU device files: slurmd only needs them to exist
MARKER = "# written by localmer's tests/test_slurm.py; removed when the test ends"


def slurm_conf(folder: Path, host: str, munge_socket: Path) -> Path:
    """slurm.conf and gres.conf in /etc/slurm (which must exist); state, PID and log files in ``folder``."""
    conf = CONF_DIR / "slurm.conf"
    cpus = os.cpu_count() or 1
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    state = folder / "state"
    state.mkdir()
    (CONF_DIR / "gres.conf").write_text(
        f"{MARKER}\n" + "".join(f"NodeName={host} Name=gpu File={device}\n" for device in GPU_DEVICES)
    )
    conf.write_text(
        "\n".join(
            [
                MARKER,
                "ClusterName=localmer-test",
                f"SlurmctldHost={host}",
                "SlurmUser=root",
                "AuthType=auth/munge",
                f"AuthInfo=socket={munge_socket}",
                f"StateSaveLocation={state}",
                f"SlurmdSpoolDir={state}/slurmd",
                f"SlurmctldPidFile={folder}/slurmctld.pid",
                f"SlurmdPidFile={folder}/slurmd.pid",
                f"SlurmctldLogFile={folder}/slurmctld.log",
                f"SlurmdLogFile={folder}/slurmd.log",
                "SlurmctldPort=16817",
                "SlurmdPort=16818",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "MinJobAge=3600",  # no accounting: finished jobs stay visible to squeue (and this test) for an hour
                "ReturnToService=2",
                "GresTypes=gpu",
                f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{len(GPU_DEVICES)} State=UNKNOWN",
                "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    return conf


def read_pid(path: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.2)
    return int(path.read_text().split()[0])


def start_munged(folder: Path) -> int:
    """A munged of this test's own: a fresh key, its socket and every file it writes in ``folder``, which
    munged insists belongs to it and is traversable by all (clients reach the socket through it)."""
    shutil.chown(folder, "munge", "munge")
    folder.chmod(0o711)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    files = {name: folder / name for name in ("munged.pid", "munged.log", "munged.seed")}
    run(
        "runuser",
        "-u",
        "munge",
        "--",
        PACKAGES["munge"],
        f"--key-file={key}",
        f"--socket={folder / 'munge.socket'}",
        f"--pid-file={files['munged.pid']}",
        f"--log-file={files['munged.log']}",
        f"--seed-file={files['munged.seed']}",
    )
    return read_pid(files["munged.pid"])


def stop(pid: int, timeout: float = 30) -> None:
    """SIGTERM, then wait for the daemon to be gone (munged writes its seed file as it exits)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + timeout
    with contextlib.suppress(FileNotFoundError):
        while "State:\tZ" not in status.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)


@contextlib.contextmanager
def single_node_cluster():
    """A running single-node cluster; yields the environment for its clients (SLURM_CONF). Everything it
    writes (configuration, munge key, state, logs) is removed when it ends. (Also used by
    benchmarks/slurm_grouping.py.)"""
    install_slurm()
    if os.geteuid() != 0:
        skip_unless_ci("starting munged, slurmctld and slurmd needs root")
    conf = CONF_DIR / "slurm.conf"
    if conf.exists() and MARKER not in conf.read_text():
        skip_unless_ci(f"{conf} exists and was not written by this test: not overwriting a real cluster's config")
    made_conf_dir = not CONF_DIR.exists()
    # Outside pytest's base temp (root-only): munged runs as user munge and must reach its folder.
    munge_folder = Path(tempfile.mkdtemp(prefix="localmer-munge-"))
    folder = Path(tempfile.mkdtemp(prefix="localmer-slurm-"))
    host = socket.gethostname().split(".")[0]
    started: list[int] = []
    try:
        started.append(start_munged(munge_folder))
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        conf = slurm_conf(folder, host, munge_folder / "munge.socket")
        env = {**os.environ, "SLURM_CONF": str(conf)}
        run(PACKAGES["slurmctld"], "-f", str(conf), env=env)
        started.append(read_pid(folder / "slurmctld.pid"))
        run(PACKAGES["slurmd"], "-f", str(conf), env=env)
        started.append(read_pid(folder / "slurmd.pid"))
        deadline = time.monotonic() + 60
        while "idle" not in run("sinfo", "-h", "-o", "%T", env=env, check=False).stdout:
            if time.monotonic() > deadline:
                logs = "".join(p.read_text()[-2000:] for p in folder.glob("*.log"))
                raise TimeoutError(f"the SLURM node did not become idle:\n{logs}")
            time.sleep(0.5)
        yield env
    finally:
        for pid in reversed(started):
            stop(pid)
        for name in ("slurm.conf", "gres.conf"):
            path = CONF_DIR / name
            if path.exists() and MARKER in path.read_text():
                path.unlink()
        if made_conf_dir:
            shutil.rmtree(CONF_DIR)
        shutil.rmtree(munge_folder)
        shutil.rmtree(folder)


@pytest.fixture
def slurm_cluster():
    with single_node_cluster() as env:
        yield env


def reduced_demo(folder: Path) -> Path:
    """The config of the reduced demo: two parts of one subject each = 2 folds, every rule of the seed's
    method, fewest jobs (LOSO needs two subjects), 1 spatial and 2 temporal epochs (jobs here, not scores)."""
    config = small_config(folder)
    cfg = yaml.safe_load(config.read_text())
    for part in cfg["synthetic"]["parts"].values():
        part.update(subjects=1, extra_clips_per_subject=0)  # preprocessing covers every clip: none extra here
    # SMIC-HS's clips are left out of the index, and so the composite's ground truth, which lists them, is
    # not checked.
    cfg["datasets"] = [dataset for dataset in cfg["datasets"] if dataset["kind"] != "smic"]
    cfg["task"]["ground_truth"] = None
    cfg["training"]["spatial"]["epochs"], cfg["training"]["temporal"]["epochs"] = 1, 2
    config.write_text(yaml.safe_dump(cfg))
    shutil.copytree(REPO / "config", folder / "config", dirs_exist_ok=True)
    return config


def slurm_run(folder: Path, config: Path, env: dict, profile: Path = REPO / "profiles" / "slurm"):
    """The workflow through ``profile`` on the cluster of ``env``."""
    return subprocess.run(
        [
            *SNAKEMAKE,
            "--directory",
            str(folder),
            "--configfile",
            str(config),
            "--profile",
            str(profile),
            "--slurm-status-command",
            "squeue",
            "--slurm-no-account",
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--jobs",
            "4",
            # --resources takes several values: it goes last.
            "--resources",
            f"gpu={len(GPU_DEVICES)}",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
    )


@pytest.mark.slow
@pytest.mark.slurm
def test_the_workflow_runs_through_slurm_with_gpu_rules_asking_for_a_gpu(slurm_cluster, tmp_path):
    config = reduced_demo(tmp_path)
    result = slurm_run(tmp_path, config, slurm_cluster)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    predictions = pd.read_csv(tmp_path / "results" / "full" / "predictions.tsv", sep="\t")
    assert predictions.subject.nunique() == 2
    assert set(json.loads((tmp_path / "results" / "full" / "metrics.json").read_text())["parts"]) >= {"FULL"}

    # Every job went through SLURM, but the local rules' (Snakefile: localrules); the profile's groups went
    # as one job per group-components units (a fold's training, a subject's preprocessing), each asking for a
    # GPU when one of its rules does.
    records = run("scontrol", "show", "job", "-o", env=slurm_cluster).stdout.splitlines()
    by_name: dict[str, list[str]] = {}
    for record in records:
        comment = next((field for field in record.split() if field.startswith("Comment=rule_")), None)
        if comment:
            by_name.setdefault(comment.removeprefix("Comment=rule_").split("_wildcards")[0], []).append(record)
    # As many jobs per rule and group as the workflow's own plan of the whole run holds: each job submitted
    # once, none but the local rules' run outside SLURM. The index is a checkpoint, and a plan that reruns it
    # cannot list the jobs that follow it, so two forced dry runs: the corpus and the index, then everything
    # downstream.
    upstream = {"synthesize_corpus", "build_index"}
    plan = planned_jobs(tmp_path, config, "--forcerun", *sorted(set(rules()) - upstream))
    plan.update(
        {rule: n for rule, n in planned_jobs(tmp_path, config, "--forcerun", *upstream).items() if rule in upstream}
    )
    # Rules without an action (the target `all`) are not jobs Snakemake submits.
    submitted = {rule: n for rule, n in plan.items() if rules().get(rule, {}).get("script")}
    assert set(plan) - set(submitted) == {"all"}, plan
    # The run is the seed's method only: every GPU rule but the deep peers' ran.
    assert set(GPU_RULES) - {"train_deep_peer"} | {"detect_landmarks", "crop_regions", "evaluate"} <= set(submitted)
    local, (group_of, components) = local_rules(), profile_groups()
    assert {"build_index", "evaluate"} <= local and {"train_spatial", "detect_landmarks"} <= set(group_of)
    members: dict[str, set[str]] = {}
    for rule in set(submitted) & set(group_of) - local:
        members.setdefault(group_of[rule], set()).add(rule)
    assert {"fold", "subject", "crops"} <= set(members)
    expected = {rule: n for rule, n in submitted.items() if rule not in local and rule not in group_of}
    for group, grouped in members.items():  # one unit (fold, subject) per job of each rule; ceil(units / n)
        expected[group] = -(-max(submitted[rule] for rule in grouped) // components.get(group, 1))

    def group_or_rule(name: str) -> str:
        """A group job's name is its group's and its rules' (sorted), e.g. fold_train_spatial_train_temporal..."""
        return name.split("_")[0] if name.split("_")[0] in members else name

    jobs = {group_or_rule(name): len(found) for name, found in by_name.items()}
    assert jobs == expected, (jobs, expected)
    assert sum(jobs.values()) < sum(n for rule, n in submitted.items() if rule not in local)  # fewer, by groups
    for name, found in by_name.items():
        rules_of_job = {rule for rule in members.get(group_or_rule(name), {name}) if rule in name}
        assert rules_of_job == members.get(group_or_rule(name), {name}), name  # every rule of its group ran
        for record in found:
            assert "JobState=COMPLETED" in record, record
            asks_gpu = any(gpu in record for gpu in ("gres:gpu:1", "gres/gpu:1", "gres/gpu=1"))
            assert asks_gpu == bool(rules_of_job & set(GPU_RULES)), (name, record)
