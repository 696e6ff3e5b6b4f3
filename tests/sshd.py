"""A throw-away sshd on 127.0.0.1 for testing `bench --target ssh://...`.

Generated host and client keys, a high free port, key-only root login, and a
ForceCommand wrapper that runs the client's command with `bin_dir` first on
PATH (the emulated aarch64 shims make it "a Pi"). Stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class FakeBoard:
    port: int
    config: Path  # ssh -F file for the client
    pid: int
    url: str

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp: Path, bin_dir: Path | None = None) -> FakeBoard:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists() or not shutil.which("ssh"):
        raise RuntimeError("openssh-server and openssh-client are needed")
    tmp.mkdir(parents=True, exist_ok=True)
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / key)],
                       check=True)
    shutil.copy(tmp / "client.pub", tmp / "authorized_keys")
    wrapper = tmp / "wrapper.sh"
    path_prefix = f"{bin_dir}:" if bin_dir else ""
    wrapper.write_text(f'#!/bin/bash\nexport PATH="{path_prefix}$PATH"\n'
                       'exec /bin/bash --norc --noprofile -c "$SSH_ORIGINAL_COMMAND"\n')
    wrapper.chmod(0o755)
    port = free_port()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host'}\n"
        f"PidFile {tmp / 'sshd.pid'}\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nForceCommand {wrapper}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(tmp / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "sshd.log", "w"))
    host_key = (tmp / "host.pub").read_text().split()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (tmp / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {tmp / 'client'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {tmp / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
    # a deadline, not a speed bound: a busy machine may take long to start sshd
    deadline = time.monotonic() + 120
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None and time.monotonic() < deadline, \
            f"sshd did not listen on port {port}: {(tmp / 'sshd.log').read_text()[-2000:]}"
        time.sleep(0.05)
    return FakeBoard(port, tmp / "ssh_config", proc.pid, f"ssh://root@127.0.0.1:{port}")
