"""The app as a separate process for the load bench: ``python -m cli serve`` on a free port
with its own data dir, and its memory and CPU time read from /proc while it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_path() -> Path:
    """The GGUF the app would use, resolved here so a temporary data dir needn't hold one."""
    from common.settings import Settings
    from providers.registry import local_model_path

    return local_model_path(Settings())


@dataclass
class MemSample:
    t: float
    rss_mib: float
    hwm_mib: float
    anon_mib: float | None
    file_mib: float | None


def read_mem(pid: int) -> MemSample | None:
    """VmRSS / VmHWM / RssAnon / RssFile of a process from /proc (psutil is not required)."""
    vals: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    vals[key] = int(line.split()[1]) / 1024
    except OSError:
        try:
            import psutil

            rss = psutil.Process(pid).memory_info().rss / 2**20
            return MemSample(time.perf_counter(), rss, rss, None, None)
        except Exception:
            return None
    if "VmRSS" not in vals:
        return None
    return MemSample(
        time.perf_counter(),
        round(vals["VmRSS"], 1),
        round(vals.get("VmHWM", vals["VmRSS"]), 1),
        round(vals["RssAnon"], 1) if "RssAnon" in vals else None,
        round(vals["RssFile"], 1) if "RssFile" in vals else None,
    )


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), else None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class MemWatch:
    """Samples a process's memory every ``every`` seconds in a daemon thread."""

    def __init__(self, pid: int | None, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[MemSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> MemSample | None:
        s = read_mem(self.pid) if self.pid else None
        if s is not None:
            self.samples.append(s)
        return s

    def start(self) -> MemWatch:
        if self.pid:
            self._thread = threading.Thread(target=self._run, name="memwatch", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self, t0: float | None = None) -> dict[str, Any]:
        """The peak, and the samples as [seconds since ``t0``, RSS, anon, file] in MiB."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        last = self.sample()
        if not self.samples:
            return {"pid": self.pid, "peak_rss_mib": None, "hwm_mib": None, "samples": 0}
        peak = max(self.samples, key=lambda s: s.rss_mib)
        return {
            "pid": self.pid,
            "peak_rss_mib": peak.rss_mib,  # highest sampled VmRSS
            "peak_anon_mib": peak.anon_mib,
            "peak_file_mib": peak.file_mib,  # the mmapped model's pages count here
            "hwm_mib": max(s.hwm_mib for s in self.samples),  # kernel's peak: exact
            "end_rss_mib": last.rss_mib if last else None,
            "peak_at_s": round(peak.t - t0, 1) if t0 is not None else None,
            "samples": len(self.samples),
            "series": [
                [round(x.t - (t0 or self.samples[0].t), 1), x.rss_mib, x.anon_mib, x.file_mib]
                for x in self.samples
            ],
        }


class AppServer:
    """``python -m cli serve`` in its own process group, with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        provider: str = "local",
        max_tokens: int = 40,
        seed: int | None = 1,
        threads: int | None = None,
        model: Path | None = None,
        fake_script: Path | None = None,
        app_env: dict[str, str] | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "serve.log"
        env = dict(os.environ)
        for k in (
            "RAPPORT_CHROMA_HOST",
            "RAPPORT_DATABASE_URL",
            "RAPPORT_BASE_URL",
            "RAPPORT_HOST",
            "RAPPORT_PORT",
        ):
            env.pop(k, None)
        env.update(
            {
                "RAPPORT_PROVIDER": provider,
                "RAPPORT_DATA_DIR": str(data_dir),
                "RAPPORT_MAX_TOKENS": str(max_tokens),
                "RAPPORT_AUTH": "off",
                "GRADIO_ANALYTICS_ENABLED": "False",
                "ANONYMIZED_TELEMETRY": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if seed is not None:
            env["RAPPORT_SEED"] = str(seed)
        if threads:
            env["RAPPORT_N_THREADS"] = str(threads)
        if provider == "local":
            env["RAPPORT_MODEL_PATH"] = str(model or model_path())
        if fake_script is not None:
            env["RAPPORT_FAKE_SCRIPT"] = str(fake_script)
        env.update(app_env or {})
        self.env = env
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rapport.sqlite3"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> AppServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the app exited with {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/config", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - t0 > self.startup_timeout:
                self.stop()
                raise RuntimeError(f"the app did not answer in {self.startup_timeout:.0f} s")
            time.sleep(0.5)
        self.startup_s = time.perf_counter() - t0
        return self

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """SIGTERM to the app's own process group (we started it), SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
