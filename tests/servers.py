"""Real servers on 127.0.0.1 for tests: llama-cpp-python's OpenAI-compatible server and the
Rapport app itself, plus the flags for headless Debian chromium."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, free_port

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until_up(
    proc: subprocess.Popen[bytes], url: str, log: Path, name: str, timeout: float = 120
) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer {url} in {timeout:.0f} s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def llama_server(model: Path, alias: str = "tiny", n_ctx: int = 2048) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` and yield its ``/v1`` base URL."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,  # a file, not a pipe: a full pipe would block the server
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(proc, f"{base}/models", Path(log.name), "llama_cpp.server")
        yield base
    finally:
        stop(proc)


@contextmanager
def rapport_app(
    env: dict[str, str],
    log: Path,
    timeout: float = 180,
    rapport: list[str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[str]:
    """``rapport serve`` on a free port with ``env``; yield its URL and stop it afterwards.
    The app's output goes to ``log``, which a failed start quotes. ``rapport`` is the command
    that runs the CLI (default: this checkout's, ``python -m cli``), started in ``cwd``."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*(rapport or [sys.executable, "-m", "cli"]), "serve", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_up(proc, url, log, "rapport serve", timeout)
            yield url
        finally:
            stop(proc, grace=20)


def add_users(env: dict[str, str], users: dict[str, tuple[str, str]]) -> None:
    """``rapport users add`` for each ``name: (role, password)``, in the app's data dir."""
    for name, (role, password) in users.items():
        subprocess.run(
            [sys.executable, "-m", "cli", "users", "add", name, "--role", role, "--password-stdin"],
            cwd=ROOT,
            env=env,
            input=password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )


def sign_in(browser: Any, url: str, name: str, password: str) -> Any:
    """A fresh browser context signed in through Gradio's login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("input[type=text]").fill(name)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()
    page.locator("#whoami").get_by_text(f"Signed in as {name}").wait_for()
    return page


def field(page: Any, elem_id: str) -> Any:
    """The text input inside a Gradio component with this ``elem_id``."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first
