"""Real processes for system tests: the cloud service (uvicorn) and helpers to stop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port, wait_for_port

ENTRY = "from edge.cli import main; main()"


@dataclass
class Ran:
    stdout: str
    returncode: int


def dockgate(
    *args: str, env: dict[str, str] | None = None, check: bool = True, stdin: str | None = None
) -> Ran:
    """Run a ``dockgate`` command in this process (click's runner: no interpreter start-up per
    call); the long-running services use real child processes below."""
    from click.testing import CliRunner

    from edge.cli import cli

    result = CliRunner().invoke(cli, list(args), input=stdin, env=env)
    if check and result.exit_code != 0:
        raise AssertionError(
            f"dockgate {' '.join(args)} -> {result.exit_code}: {result.output} {result.exception!r}"
        )
    return Ran(result.output, result.exit_code)


class CloudProcess:
    """``dockgate cloud serve`` in a child process, on a free port."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        issuing_dir: Path,
        workers: int = 1,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.config = tmp / f"cloud-{self.port}.toml"
        self.config.write_text(
            f'database_url = "{database_url}"\nissuing_dir = "{issuing_dir}"\nfreeze_poll_s = 0.1\n'
        )
        self.workers = workers
        self.log = tmp / f"cloud-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CloudProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    ENTRY,
                    "cloud",
                    "serve",
                    "--config",
                    str(self.config),
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout=60)
        except TimeoutError:
            self.stop()
            raise RuntimeError(self.log.read_text()[-3000:]) from None
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn workers too): a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
