"""Helpers for the UI test: a real `dagster dev` on a free port, GraphQL runs, headless Chromium.

`dagster dev` starts the webserver, the daemon (which dequeues submitted runs) and a code server.
It runs in its own process group so teardown can stop all of them, and never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterServer:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def instance_config_for_tests() -> dict:
    """The repo's dagster.yaml plus two test-only settings.

    * ``nux.enabled: false``: a fresh browser profile would get Dagster's one-time welcome dialog
      over every page.
    * runs launched by a sensor stay queued (a tag concurrency limit of 0 on
      ``dagster/sensor_name``): the catalogue sensor sees the copied sample catalogue and queues a
      run per day, which would otherwise hold both run slots while the test's own run waits.
    """
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text(encoding="utf-8")) or {}
    config["nux"] = {"enabled": False}
    runs = config.setdefault("concurrency", {}).setdefault("runs", {})
    runs.setdefault("tag_concurrency_limits", []).append({"key": "dagster/sensor_name", "limit": 0})
    return config


def dagster_env(dagster_home: Path, data_dir: Path) -> dict[str, str]:
    """Environment for a server with its own instance (:func:`instance_config_for_tests`) and data root."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config_for_tests(), sort_keys=False),
                                               encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(DAGSTER_HOME=str(dagster_home), SUNORECSYS_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


def start_dagster_dev(dagster_home: Path, data_dir: Path, log_path: Path,
                      module: str = "sunorecsys_pipeline.definitions") -> DagsterServer:
    """Start `dagster dev -m <module>` on a free port in a new process group (returns at once)."""
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster) if dagster.exists() else "dagster", "dev", "-m", module, "-h", "127.0.0.1",
           "-p", str(port)]
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the process is stopped
    proc = subprocess.Popen(cmd, cwd=REPO, env=dagster_env(dagster_home, data_dir), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()  # the child holds its own copy
    return DagsterServer(port, proc, log_path)


def wait_for_server(server: DagsterServer, timeout_s: float = 90) -> float:
    """Poll /server_info until it answers; return seconds waited. Fails fast if the server died."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if server.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"dagster dev did not answer within {timeout_s:.0f} s:\n{server.log_tail()}")


def stop_server(server: DagsterServer, grace_s: float = 20) -> None:
    """SIGTERM the server's process group (webserver, daemon, code server, runs), then SIGKILL
    whatever of the group is left, until nothing is."""
    pgid = server.process.pid  # start_new_session: the leader's pid is the group id
    if server.process.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
            server.process.wait(timeout=grace_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)  # children that outlived the leader
        except ProcessLookupError:
            break
        time.sleep(0.2)
    if server.process.poll() is None:
        server.process.wait(timeout=5)


@contextmanager
def running_dagster(dagster_home: Path, data_dir: Path, log_path: Path,
                    module: str = "sunorecsys_pipeline.definitions",
                    timeout_s: float = 90) -> Iterator[DagsterServer]:
    server = start_dagster_dev(dagster_home, data_dir, log_path, module)
    try:
        wait_for_server(server, timeout_s)
        yield server
    finally:
        stop_server(server)


def wait_for_run(client, run_id: str, timeout_s: float = 120) -> str:
    """Poll a run until it ends; return the final status name (SUCCESS, FAILURE, CANCELED)."""
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < timeout_s:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise TimeoutError(f"run {run_id} still {status} after {timeout_s:.0f} s")


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def chromium(url: str, user_data_dir: Path, *extra: str, budget_ms: int = 15000,
             timeout_s: float = 60) -> str:
    """Run headless Chromium on ``url`` with extra flags (--dump-dom, --screenshot=...); return stdout.

    ``--virtual-time-budget`` lets the React app fetch its GraphQL data and render before the DOM
    is dumped or the picture taken.
    """
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium")
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", f"--virtual-time-budget={budget_ms}",
           *extra, url]
    # Own process group: on a timeout the renderer and zygote children go too, not just the leader.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {err[-2000:]}")
    return out


def render(url: str, user_data_dir: Path, screenshot_path: Path | None = None,
           size: tuple[int, int] = (1400, 900), budget_ms: int = 15000) -> str:
    """Load ``url`` once: return the rendered DOM and, if asked, save a PNG screenshot of the window.

    The asset graph renders only the nodes inside the window, so ``size`` must fit a group's graph.
    """
    extra = ["--dump-dom", f"--window-size={size[0]},{size[1]}"]
    if screenshot_path is not None:
        screenshot_path.parent.mkdir(parents=True, exist_ok=True)
        extra.append(f"--screenshot={screenshot_path}")
    return chromium(url, user_data_dir, *extra, budget_ms=budget_ms)
