"""A fake OpenAI-compatible server for fault tests: a real HTTP server on 127.0.0.1.

It serves ``POST /v1/chat/completions`` (streaming SSE and plain JSON) and ``GET /v1/models``.
Each chat request takes the next behaviour from the server's fault plan::

    with fake_openai() as srv:
        srv.plan(status(503), ok("Fine, thanks."))
        ...  # point Settings(base_url=srv.base_url) at it
        assert srv.count == 2

Behaviours: :func:`ok`, :func:`delay`, :func:`status`, :func:`cut_stream`, :func:`malformed`,
:func:`empty`. When the plan runs out the server answers HTTP 400 (not retried by clients)
and counts it in ``exhausted``, so a test that under-planned fails loudly.

For "connection refused" no server is needed: use :func:`refused_url`.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Kind = Literal["ok", "delay", "status", "cut_stream", "malformed", "empty"]


@dataclass(frozen=True)
class Behaviour:
    kind: Kind
    text: str = ""
    seconds: float = 0.0
    code: int = 200
    retry_after: float | None = None
    after_chunks: int = 0
    framing: Literal["chunked", "close"] = "chunked"


def ok(text: str) -> Behaviour:
    """A normal completion with ``text`` (streamed a word per SSE chunk when asked to)."""
    return Behaviour("ok", text=text)


def delay(seconds: float, text: str = "Sorry, I was away.", after_chunks: int = 0) -> Behaviour:
    """Wait ``seconds`` (set it longer than the client timeout), then answer like ``ok``.

    With ``after_chunks`` the wait comes mid-stream, after that many SSE chunks."""
    return Behaviour("delay", text=text, seconds=seconds, after_chunks=after_chunks)


def status(code: int, retry_after: float | None = None, message: str = "") -> Behaviour:
    """An HTTP error (429, 500, 502, 503...) with an OpenAI-style error body."""
    return Behaviour("status", code=code, retry_after=retry_after, text=message)


def cut_stream(
    after_chunks: int,
    text: str = "I was charged twice for the same month and nobody has told me why.",
    framing: Literal["chunked", "close"] = "chunked",
) -> Behaviour:
    """Send ``after_chunks`` SSE chunks of ``text``, then drop the connection without
    ``[DONE]`` or a finish_reason.

    ``framing="chunked"`` (what real servers use) ends mid chunked-encoding, so the client
    sees an incomplete body; ``"close"`` delimits the body by closing the connection, so the
    client sees a clean end of body that merely lacks ``[DONE]``."""
    return Behaviour("cut_stream", text=text, after_chunks=after_chunks, framing=framing)


def malformed() -> Behaviour:
    """An invalid JSON body, or garbage SSE events when streaming."""
    return Behaviour("malformed")


def empty() -> Behaviour:
    """A well-formed completion whose content is the empty string."""
    return Behaviour("empty")


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


@dataclass
class FakeOpenAI:
    host: str
    port: int
    requests: list[Request] = field(default_factory=list)
    exhausted: int = 0
    model: str = "fake-model"

    def __post_init__(self) -> None:
        self._plan: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def count(self) -> int:
        """How many chat-completion requests arrived."""
        return len(self.chat_requests)

    @property
    def chat_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def gaps(self) -> list[float]:
        """Seconds between successive chat requests (the client's backoff)."""
        at = [r.at for r in self.chat_requests]
        return [b - a for a, b in itertools.pairwise(at)]

    def plan(self, *behaviours: Behaviour) -> None:
        """Append behaviours for the next requests, in order."""
        with self._lock:
            self._plan.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._plan.clear()
            self.requests.clear()
            self.exhausted = 0

    def _take(self, req: Request) -> Behaviour | None:
        with self._lock:
            self.requests.append(req)
            if self._plan:
                return self._plan.popleft()
            self.exhausted += 1
            return None


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing -------------------------------------------------------------------------
    def _json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(code, json.dumps(payload).encode(), "application/json", headers)

    def _raw(
        self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _start_sse(self, framing: str = "chunked") -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        self._framing = framing

    def _send(self, data: bytes) -> None:
        if self._framing == "chunked":
            data = f"{len(data):X}\r\n".encode() + data + b"\r\n"
        self.wfile.write(data)
        self.wfile.flush()

    def _event(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._send(f"data: {text}\n\n".encode())

    def _end_sse(self) -> None:
        self._event("[DONE]")
        if self._framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection now, mid-response."""
        self.close_connection = True
        self.wfile.flush()
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": fake.model, "object": "model", "owned_by": "fake"}],
                },
            )
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_unparseable": raw.decode("utf-8", "replace")}
        req = Request(self.path, body, time.monotonic())
        b = fake._take(req)
        try:
            self._respond(b, req)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
            self.close_connection = True

    def _respond(self, b: Behaviour | None, req: Request) -> None:
        fake = self.server.fake
        model = str(req.body.get("model") or fake.model)
        if b is None:
            self._json(
                400,
                {
                    "error": {
                        "message": "fake_openai: the fault plan is exhausted",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        if b.kind == "status":
            headers = {"Retry-After": f"{b.retry_after:g}"} if b.retry_after is not None else {}
            kind = "rate_limit_error" if b.code == 429 else "server_error"
            msg = b.text or f"fake_openai: HTTP {b.code}"
            self._json(b.code, {"error": {"message": msg, "type": kind, "code": None}}, headers)
            return
        mid_stream = req.stream and b.after_chunks
        if b.kind == "delay" and not mid_stream and fake.stopping.wait(b.seconds):
            self._drop()  # the server is stopping
            return
        if b.kind == "malformed":
            if req.stream:
                self._start_sse()
                self._event('{"id": "chatcmpl-fake", "choices": [{"delta": {"content": "Hel')
                self._event("this is not json at all }")
                self._end_sse()
            else:
                self._raw(200, b'{"id": "chatcmpl-fake", "choices": [{"mess', "application/json")
            return
        text = "" if b.kind == "empty" else b.text
        if not req.stream:
            self._json(200, _completion(model, text))
            return
        pieces = _pieces(text) if text else [""]
        self._start_sse(b.framing)
        self._event(_chunk(model, {"role": "assistant", "content": ""}))
        for n, piece in enumerate(pieces):
            if b.kind == "cut_stream" and n == b.after_chunks:
                if b.framing == "close":
                    self.wfile.flush()
                    self.close_connection = True
                    return  # the handler closes the socket: a clean end of body
                self._drop()
                return
            if b.kind == "delay" and n == b.after_chunks and fake.stopping.wait(b.seconds):
                self._drop()
                return
            if piece:
                self._event(_chunk(model, {"content": piece}))
        self._event(_chunk(model, {}, "stop"))
        self._end_sse()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (it timed out, or gave up on a bad body) is expected here."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


@contextmanager
def fake_openai(host: str = "127.0.0.1", port: int = 0) -> Iterator[FakeOpenAI]:
    """Start the fake server in a thread (on a free port unless given); stop it on exit."""
    server = _Server((host, port), _Handler)
    fake = FakeOpenAI(host, int(server.server_address[1]))
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def refused_url() -> str:
    """A base URL on a free local port with nothing listening: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return f"http://127.0.0.1:{port}/v1"
