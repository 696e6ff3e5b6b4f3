"""Run the bench on a remote board over SSH: `--target ssh://user@host[:port]`.

Uses the system's `ssh` with the user's own keys and config (BatchMode: never
a password prompt; host keys checked as the user's ssh config says). Ships only
what the bench needs (the selected artifacts, manifest, eval and reference
sets, and the TF-free `edgekd` + `bench` packages) as a tar stream over ssh,
sets up the runtime if absent, runs `python -m bench` there, and reads back
its bench.json. Every remote argument is shell-quoted.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import EdgekdError
from edgekd.files import inside

CODE_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = ("numpy", "onnxruntime", "ai-edge-litert", "jsonschema", "tqdm")
_URL = re.compile(r"ssh://(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+)(?::(?P<port>\d+))?/?")
# A user or host name: letters, digits, '.', '_', '-', never a leading '-' (ssh
# would read it as an option) and nothing a shell or ssh_config would expand.
# fullmatch only: `$` also matches before a final newline.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
REMOTE_MARKER = ".edgekd-bench"  # marks a --remote-dir edgekd made (and may clear)


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    user: str | None = None
    port: int | None = None

    def ssh(self, timeout: float, config: str | None = None) -> list[str]:
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}"]
        if config:
            cmd += ["-F", config]
        if self.port:
            cmd += ["-p", str(self.port)]
        # "--" ends ssh's options: nothing after it is read as one
        return cmd + ["--", f"{self.user}@{self.host}" if self.user else self.host]


def parse_target(url: str) -> Target:
    m = _URL.fullmatch(url.strip())
    if not m:
        raise EdgekdError(f"bad --target {url!r}: expected ssh://[user@]host[:port]")
    for part in ("user", "host"):
        if m[part] is not None and not _NAME.fullmatch(m[part]):
            raise EdgekdError(f"bad --target {url!r}: the {part} name {m[part]!r} may hold only "
                              "letters, digits, '.', '_' and '-', and may not start with '-'")
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 0 < port < 65536:
        raise EdgekdError(f"bad --target {url!r}: port {port} out of range")
    return Target(url.strip(), m["host"], m["user"], port)


@dataclass(frozen=True)
class RemoteOptions:
    remote_dir: str = "edgekd-bench"  # relative to the remote home, or absolute
    remote_python: str | None = None  # use this interpreter; no set-up
    connect_timeout: float = 15.0
    ssh_config: str | None = None  # ssh -F FILE; default: the user's own ssh config
    run_timeout: float = 7200.0
    extra_args: tuple[str, ...] = ()  # passed to the remote `python -m bench`

    def __post_init__(self):
        remote_path(self.remote_dir)  # a bad --remote-dir fails before any connection


def remote_path(remote_dir: str) -> str:
    """--remote-dir as the board's shell must see it: `~` and `~/x` are the
    remote home and a folder in it (quoted, the shell would not expand them,
    and a folder named `~` would appear)."""
    d = remote_dir.strip()
    if not d or any(ord(c) < 32 for c in d):
        raise EdgekdError(f"bad --remote-dir {remote_dir!r}: give a folder name")
    if d == "~" or d.startswith("~/"):
        return d[2:].strip("/") or "."
    if d.startswith("~"):
        raise EdgekdError(f"bad --remote-dir {remote_dir!r}: ~user is not expanded; give a path "
                          "relative to the remote home or an absolute one")
    return d


def _ssh(target: Target, command: str, opts: RemoteOptions, stdin: bytes | None = None,
         timeout: float | None = None) -> str:
    try:
        proc = subprocess.run(target.ssh(opts.connect_timeout, opts.ssh_config) + [command],
                              input=stdin,
                              capture_output=True, timeout=timeout or opts.run_timeout)
    except subprocess.TimeoutExpired:
        raise EdgekdError(f"{target.url}: no answer within {timeout or opts.run_timeout:.0f} s") from None
    except FileNotFoundError:
        raise EdgekdError("the `ssh` client is not installed (apt-get install openssh-client)") from None
    err = proc.stderr.decode(errors="replace").strip().splitlines()
    if proc.returncode == 255:
        raise EdgekdError(f"cannot reach {target.url}: {err[-1] if err else 'ssh failed'}")
    if proc.returncode != 0:
        raise EdgekdError(f"{target.url}: remote command failed ({err[-1] if err else proc.returncode})")
    return proc.stdout.decode(errors="replace")


def bundle(folder: Path, manifest: dict, arts: list[dict]) -> bytes:
    """tar of what the remote bench needs, nothing else."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rec in [manifest["eval"], manifest["references"], *arts]:
            tar.add(inside(folder, rec["path"], "bundle"), arcname=f"artifacts/{rec['path']}")
        tar.add(inside(folder, "manifest.json", "bundle"), arcname="artifacts/manifest.json")
        for pkg in ("edgekd", "bench"):
            tar.add(CODE_ROOT / pkg, arcname=f"code/{pkg}",
                    filter=lambda t: None if "__pycache__" in t.name else t)
    return buf.getvalue()


_PROBE = ("import sys; v = sys.version_info[:2]; ok = v >= (3, 10)\n"
          "mods = ('numpy', 'onnxruntime', 'ai_edge_litert', 'jsonschema', 'tqdm')\n"
          "import importlib.util as u\n"
          "missing = [m for m in mods if ok and u.find_spec(m) is None]\n"
          "print('%d.%d' % v, ','.join(missing))")


def _python(target: Target, opts: RemoteOptions, rdir: str) -> str:
    """An interpreter on the board with the runtime installed (set up if absent)."""
    venv_py = f"{rdir}/venv/bin/python"
    candidates = [opts.remote_python] if opts.remote_python else ["python3", venv_py]
    for py in candidates:
        out = _ssh(target, f"{shlex.quote(py)} -c {shlex.quote(_PROBE)} 2>/dev/null || true",
                   opts, timeout=300).split()
        if not out:
            continue
        version, missing = out[0], (out[1] if len(out) > 1 else "")
        if tuple(int(x) for x in version.split(".")) < (3, 10):
            raise EdgekdError(f"{target.url}: {py} is Python {version}; bench needs >= 3.10 "
                              "(pass --remote-python /path/to/python3.10+)")
        if not missing:
            return py
    if opts.remote_python:
        raise EdgekdError(f"{target.url}: {opts.remote_python} lacks the runtime packages "
                          f"({', '.join(RUNTIME_PACKAGES)})")
    print(f"[bench] {target.url}: installing the runtime into {rdir}/venv", flush=True)
    _ssh(target, f"python3 -m venv {shlex.quote(rdir + '/venv')} && "
         f"{shlex.quote(venv_py)} -m pip install -q "
         + " ".join(shlex.quote(p) for p in RUNTIME_PACKAGES), opts, timeout=1800)
    return venv_py


def _remote_dir(target: Target, opts: RemoteOptions) -> str:
    """The absolute --remote-dir on the board: created, or used only when empty
    or marked by edgekd (its artifacts/ and code/ are replaced on every run)."""
    d, m = shlex.quote(remote_path(opts.remote_dir)), shlex.quote(REMOTE_MARKER)
    script = (f"if [ -e {d} ] || [ -L {d} ]; then "
              f"if [ ! -d {d} ] || [ -L {d} ]; then echo NOTDIR; exit 0; fi; "
              f"if [ -n \"$(ls -A {d})\" ] && {{ [ ! -f {d}/{m} ] || [ -L {d}/{m} ]; }}; "
              f"then echo FOREIGN; exit 0; fi; fi; "
              f"mkdir -p {d} && cd {d} && touch {m} && echo OK && pwd")
    out = [line.strip() for line in _ssh(target, script, opts, timeout=120).splitlines()]
    if out[:1] == ["NOTDIR"]:
        raise EdgekdError(f"{target.url}: --remote-dir {opts.remote_dir} is not a folder; "
                          "pass a new folder name")
    if out[:1] == ["FOREIGN"]:
        raise EdgekdError(f"{target.url}: --remote-dir {opts.remote_dir} holds files edgekd did "
                          f"not make (no {REMOTE_MARKER}) and would be cleared; pass a new or "
                          "empty folder")
    if out[:1] != ["OK"] or len(out) < 2:
        raise EdgekdError(f"{target.url}: cannot create --remote-dir {opts.remote_dir}")
    return out[-1]  # the folder's absolute path (pwd), spaces and all


def run_remote(target: Target, folder: Path, manifest: dict, arts: list[dict],
               opts: RemoteOptions) -> dict:
    """Copy, set up, bench, fetch; returns the remote bench.json content."""
    q = shlex.quote
    rdir = _remote_dir(target, opts)
    _ssh(target, f"rm -rf {q(rdir + '/artifacts')} {q(rdir + '/code')} "
         f"&& tar -xzf - -C {q(rdir)}", opts, stdin=bundle(folder, manifest, arts), timeout=1800)
    py = _python(target, opts, rdir)
    args = " ".join(q(a) for a in opts.extra_args)
    _ssh(target, f"cd {q(rdir)} && PYTHONPATH={q(rdir + '/code')}${{PYTHONPATH:+:$PYTHONPATH}} "
         f"{q(py)} -m bench artifacts --no-progress {args} >bench.log 2>&1 "
         f"|| {{ tail -n 3 bench.log >&2; exit 1; }}", opts)
    text = _ssh(target, f"cat {q(rdir + '/artifacts/bench.json')}", opts, timeout=600)
    try:
        result = json.loads(text)
    except json.JSONDecodeError:
        raise EdgekdError(f"{target.url}: bench.json from the board is not valid JSON") from None
    result["target"] = target.url
    return result
