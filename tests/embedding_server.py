"""A local OpenAI-compatible embeddings server for tests and benchmarks (stdlib only).

``POST /v1/embeddings`` answers like the OpenAI API: deterministic vectors derived from each
input's text (``vectors="local"``: jobsim's offline hashed n-gram embedder, so similar texts
get similar vectors; ``"hash"``: a random unit vector seeded by the text, cheaper), base64 or
float encoding, the ``dimensions`` parameter, ``usage`` token counts (cl100k_base), and the
API's documented limits (≤ 2,048 inputs, no empty input, ≤ 8,192 tokens per input,
≤ 300,000 tokens per request → HTTP 400).

Scripted faults (:class:`Fault`) are applied to the next matching requests: 429 with or
without ``Retry-After``/``x-ratelimit-*`` headers, 400/401/408/500/503, a hang past the client's
timeout, NaN/inf in a vector, all-zero/huge (3e38)/tiny (1e-30) vectors, wrong dimension,
fewer vectors than inputs, shuffled or duplicated ``index``, unparseable JSON. A fault with
``pass_every=n`` lets every n-th matching request through unharmed (a flaky server). ``poison`` inputs always get a 400, so a client's
batch splitting can be tested. :meth:`EmbeddingServer.outage` refuses connections for a
while (the port is closed and reopened). Every parsed request is recorded for assertions.

Run standalone (benchmarks): ``python -m tests.embedding_server --latency 0.1 --vectors hash``
prints the base URL; ``GET /stats`` returns request/input/token counts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from jobsim.tokens import count_tokens

MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000
FAULT_KINDS = frozenset({
    "429", "400", "401", "408", "500", "503", "hang", "nan", "inf", "wrong_dim", "fewer",
    "shuffle", "duplicate", "bad_json", "zero", "huge", "tiny",
})
_VALUE_FAULTS = {"nan": np.nan, "inf": np.inf, "huge": 3e38, "tiny": 1e-30, "zero": 0.0}


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` matching requests (0 = every one)."""

    kind: str
    times: int = 1
    retry_after: float | None = None  # 429: sent as Retry-After (seconds)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    match: str | None = None  # only requests with an input containing this text
    rows: int = 1  # nan/inf/zero/huge/tiny/fewer: how many rows are affected
    hang_s: float = 3.0
    delay_s: float = 0.0  # wait this long before answering (lets concurrent requests finish first)
    pass_every: int = 0  # every n-th matching request passes unharmed (0 = none)
    seen: int = 0  # matching requests so far

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}")


@dataclass
class Request:
    """One parsed request, as the server saw it."""

    received: float  # time.monotonic() when the body was read
    inputs: list[str]
    tokens: int
    model: str
    dimensions: int | None
    encoding_format: str | None
    status: int = 0
    fault: str | None = None
    answered: float = 0.0  # time.monotonic() when the response was written


class EmbeddingServer:
    """Threaded HTTP server on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, dimensions: int = 1536, latency: float = 0.0, vectors: str = "local",
                 port: int = 0, seed: int = 0) -> None:
        self.default_dimensions = dimensions
        self.latency = latency
        self.vectors = vectors
        self.port = port
        self.faults: list[Fault] = []
        self.poison: set[str] = set()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._embedders: dict[int, Any] = {}

    # lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "EmbeddingServer":
        self.vectors_for(["warm up"], 8)  # first use imports scikit-learn (~1 s): not in a request
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="embedding-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every open connection (clients then see connection errors)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self.lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def outage(self, seconds: float) -> threading.Thread:
        """Refuse connections for ``seconds``, then listen again on the same port."""
        self.stop()
        timer = threading.Timer(seconds, self.start)
        timer.daemon = True
        timer.start()
        return timer

    def __enter__(self) -> "EmbeddingServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # scripting and records ---------------------------------------------------------
    def add_fault(self, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.poison.clear()

    def ok_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.status == 200 and r.fault is None]

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": len(self.requests),
                "inputs": sum(len(r.inputs) for r in self.requests),
                "tokens": sum(r.tokens for r in self.requests),
                "ok": sum(r.status == 200 for r in self.requests),
            }

    def _take_fault(self, inputs: list[str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.match is not None and not any(fault.match in t for t in inputs):
                    continue
                fault.seen += 1
                if fault.pass_every and fault.seen % fault.pass_every == 0:
                    return None
                if fault.times == 0:
                    return fault
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    # vectors -------------------------------------------------------------------------
    def vectors_for(self, inputs: list[str], dims: int) -> np.ndarray:
        """Deterministic unit vectors for ``inputs`` (never zero)."""
        out = np.empty((len(inputs), dims), dtype=np.float32)
        if self.vectors == "local":
            from jobsim.embedders.local import LocalEmbedder

            with self.lock:
                embedder = self._embedders.setdefault(dims, LocalEmbedder("server", dims))
            result = embedder.embed(inputs)
            out[:] = result.vectors
            fallback = list(result.errors)
        else:
            fallback = range(len(inputs))
        for i in fallback:
            seed = int.from_bytes(hashlib.sha256(inputs[i].encode("utf-8", "surrogatepass")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


class _Handler(BaseHTTPRequestHandler):
    owner: EmbeddingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.owner.lock:
            self.owner._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.owner.lock:
                self.owner._conns.discard(self.connection)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = {400: "invalid_request_error", 401: "invalid_request_error",
                429: "rate_limit_exceeded"}.get(status, "server_error")
        body = json.dumps({"error": {"message": message, "type": kind, "param": None,
                                     "code": None}}).encode()
        self._send(status, body, headers)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/stats"):
            self._send(200, json.dumps(self.owner.stats()).encode())
        else:
            self._error(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        server = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/embeddings"):
            return self._error(404, f"unknown path {self.path}")
        try:
            body = json.loads(raw)
            inputs = body["input"]
            if isinstance(inputs, str):
                inputs = [inputs]
            if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
                raise ValueError("input must be a string or a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, f"malformed request: {exc}")
        tokens = count_tokens(inputs) if inputs else np.zeros(0, np.int64)
        req = Request(time.monotonic(), inputs, int(tokens.sum()), str(body.get("model")),
                      body.get("dimensions"), body.get("encoding_format"))
        with server.lock:
            server.requests.append(req)
        try:
            self._answer(server, req, tokens)
        finally:
            req.answered = time.monotonic()

    def _answer(self, server: EmbeddingServer, req: Request, tokens: np.ndarray) -> None:
        inputs = req.inputs
        if server.latency:
            time.sleep(server.latency)
        fault = server._take_fault(inputs)
        req.fault = fault.kind if fault else None
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)
        status = {"429": 429, "400": 400, "401": 401, "408": 408, "500": 500, "503": 503}
        if fault and fault.kind in status:
            req.status = status[fault.kind]
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            message = {401: "Incorrect API key provided", 429: "Rate limit reached"}.get(
                req.status, f"scripted {fault.kind}")
            return self._error(req.status, message, headers)
        if fault and fault.kind == "hang":
            time.sleep(fault.hang_s)
        # the API's documented limits
        problem = None
        if not inputs:
            problem = "input must not be empty"
        elif len(inputs) > MAX_INPUTS:
            problem = f"too many inputs: {len(inputs)} > {MAX_INPUTS}"
        elif any(not t for t in inputs):
            problem = "input cannot be an empty string"
        elif int(tokens.max()) > MAX_INPUT_TOKENS:
            problem = f"an input has {int(tokens.max())} tokens, the maximum is {MAX_INPUT_TOKENS}"
        elif req.tokens > MAX_REQUEST_TOKENS:
            problem = f"request has {req.tokens} tokens, the maximum is {MAX_REQUEST_TOKENS}"
        elif server.poison and any(p in t for t in inputs for p in server.poison):
            problem = "this input was rejected"
        if problem:
            req.status = 400
            return self._error(400, problem)
        dims = req.dimensions if isinstance(req.dimensions, int) else server.default_dimensions
        if fault and fault.kind == "wrong_dim":
            dims += 7
        vectors = server.vectors_for(inputs, dims)
        order = list(range(len(inputs)))
        indices = list(order)
        if fault and fault.kind in ("nan", "inf"):
            for i in order[: fault.rows]:
                vectors[i, 3] = _VALUE_FAULTS[fault.kind]
        if fault and fault.kind in ("zero", "huge", "tiny"):
            vectors[order[: fault.rows]] = _VALUE_FAULTS[fault.kind]
        if fault and fault.kind == "fewer":
            keep = max(0, len(order) - fault.rows)
            order, indices = order[:keep], indices[:keep]
        if fault and fault.kind == "shuffle":
            server.rng.shuffle(order)
            indices = list(order)
        if fault and fault.kind == "duplicate" and len(order) > 1:
            indices[1] = indices[0]  # row 1's vector is labelled as row 0's
        b64 = req.encoding_format == "base64"
        data = [
            {"object": "embedding", "index": idx,
             "embedding": (base64.b64encode(vectors[i].astype("<f4").tobytes()).decode()
                           if b64 else vectors[i].tolist())}
            for i, idx in zip(order, indices)
        ]
        payload = {"object": "list", "data": data, "model": req.model,
                   "usage": {"prompt_tokens": req.tokens, "total_tokens": req.tokens}}
        body = json.dumps(payload).encode()
        if fault and fault.kind == "bad_json":
            body = body[: len(body) // 2]
        req.status = 200
        self._send(200, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--vectors", choices=("local", "hash"), default="hash")
    parser.add_argument("--dimensions", type=int, default=1536)
    args = parser.parse_args()
    server = EmbeddingServer(args.dimensions, args.latency, args.vectors, args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
