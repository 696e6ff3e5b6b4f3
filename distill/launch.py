"""python -m distill.launch: N local `python -m distill --strategy multiworker`
processes, each with its TF_CONFIG on free 127.0.0.1 ports, for trying
MultiWorkerMirroredStrategy on one machine (on a real cluster, start one
process per machine with its own TF_CONFIG; see the README).

    python -m distill.launch --workers 2 [--max-restarts 1] -- --data ... --out DIR

If a worker dies, the others would wait in a collective, so the launcher stops
them all and (with --max-restarts) starts the job again: every worker resumes
from the chief's last BackupAndRestore checkpoint, so completed epochs are not
trained again. Worker output is forwarded with a `[wI]` prefix.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Sequence

from edgekd.errors import EdgekdError, OneLineParser, run_cli


def tf_config() -> dict:
    """TF_CONFIG from the environment, checked enough to give a clear error."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        raise EdgekdError("--strategy multiworker needs TF_CONFIG (cluster and task) in the "
                          "environment: start the workers with `python -m distill.launch "
                          "--workers N -- ...` or set it per machine (see README)")
    try:
        conf = json.loads(raw)
        cluster, task = conf["cluster"], conf["task"]
        kind, index = task["type"], int(task["index"])
        members = cluster[kind]
    except (ValueError, KeyError, TypeError) as exc:
        raise EdgekdError(f"TF_CONFIG is not valid ({type(exc).__name__}: {exc}); expected "
                          '{"cluster": {"worker": ["host:port", ...]}, '
                          '"task": {"type": "worker", "index": i}}') from None
    if kind not in ("worker", "chief") or not 0 <= index < len(members):
        raise EdgekdError(f"TF_CONFIG task {task} does not name one of the cluster's workers")
    return conf


def free_ports(n: int) -> list[int]:
    """n distinct ports the OS reports free now (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_configs(n: int) -> list[dict]:
    workers = [f"127.0.0.1:{p}" for p in free_ports(n)]
    return [{"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            for i in range(n)]


def _forward(proc: subprocess.Popen, prefix: str) -> None:
    for line in proc.stdout:
        sys.stdout.write(f"{prefix}{line}")
        sys.stdout.flush()


def start(distill_args: Sequence[str], n: int) -> list[subprocess.Popen]:
    procs = []
    for i, conf in enumerate(tf_configs(n)):
        env = {**os.environ, "TF_CONFIG": json.dumps(conf)}
        cmd = [sys.executable, "-m", "distill", *distill_args, "--strategy", "multiworker"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        print(f"[launch] worker {i} pid {proc.pid} on {conf['cluster']['worker'][i]}",
              flush=True)
        threading.Thread(target=_forward, args=(proc, f"[w{i}] "), daemon=True).start()
        procs.append(proc)
    return procs


def wait(procs: list[subprocess.Popen]) -> tuple[int, int]:
    """Until all exit 0 (-> (-1, 0)) or one fails (-> (index, code)); on a
    failure the others are stopped."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            stop(procs)
            return failed[0]
        if all(c == 0 for c in codes):
            return -1, 0
        time.sleep(0.2)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()


def describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def launch(distill_args: Sequence[str], n: int, max_restarts: int) -> int:
    for attempt in range(max_restarts + 1):
        procs = start(distill_args, n)
        try:
            index, code = wait(procs)
        except KeyboardInterrupt:
            stop(procs)
            raise
        time.sleep(0.5)  # let the forwarding threads print the last lines
        if index < 0:
            print(f"[launch] all {n} workers finished", flush=True)
            return 0
        if code == 2 and attempt == 0:  # a usage or data error: restarting cannot help
            raise EdgekdError(f"worker {index} failed on its input ({describe(code)}); "
                              "see its [w{index}] lines above")
        left = max_restarts - attempt
        print(f"[launch] worker {index} failed ({describe(code)}); stopped the others; "
              f"{left} restart(s) left", flush=True)
    raise EdgekdError(f"a worker failed {max_restarts + 1} time(s); re-run the same command "
                      "to resume from the last completed epoch")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = OneLineParser(prog="python -m distill.launch", description=(
        "Start N local distill workers under MultiWorkerMirroredStrategy. "
        "Arguments after -- go to python -m distill."))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-restarts", type=int, default=0,
                   help="restart the whole job this many times when a worker dies")
    args = p.parse_args(own)
    if args.workers < 1 or args.max_restarts < 0:
        raise EdgekdError(f"--workers must be >= 1 and --max-restarts >= 0, got "
                          f"{args.workers} and {args.max_restarts}")
    if any(a == "--strategy" or a.startswith("--strategy=") for a in rest):
        raise EdgekdError("do not pass --strategy after --: the launcher sets multiworker")
    return launch(rest, args.workers, args.max_restarts)


if __name__ == "__main__":
    sys.exit(run_cli(main, "python -m distill.launch"))
