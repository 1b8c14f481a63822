"""A small Ethereum JSON-RPC client for ``pevm fetch`` (standard library only).

Calls go out in *batches* -- a JSON array of calls in one HTTP POST -- because a
block needs several calls and providers count (and rate-limit) HTTP requests. What
is worth trying again is tried again with exponential backoff and jitter: connection
errors, timeouts, dropped connections, HTTP 429 and 5xx (honouring ``Retry-After``),
and JSON-RPC errors that mean "try later" (rate limits, busy nodes). Everything else
is a :class:`RpcError` with a one-line message, classified where the user has
something to do about it: an unreachable node, a node without the debug API or
without historical state (:class:`ArchiveRequired`), a block it does not have.
"""
from __future__ import annotations

import gzip
import http.client
import itertools
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pevm import __version__
from pevm.errors import PevmError

#: Calls per HTTP request; providers cap batch sizes (often at 100 to 1,000).
MAX_BATCH = 100
#: HTTP statuses that mean "the server is overloaded or restarting, try later".
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
#: JSON-RPC error codes that mean "try later": -32005 is EIP-1474's "limit
#: exceeded", which providers use for rate limits.
TRANSIENT_CODES = frozenset({-32005})
_TRANSIENT_WORDS = ("rate limit", "too many requests", "try again", "timeout",
                    "timed out", "busy", "overloaded", "temporarily", "capacity")
_ARCHIVE_WORDS = ("missing trie node", "historical state", "pruned",
                  "state not available", "state is not available")


class RpcError(PevmError):
    """The node answered with an error, or could not be asked."""


class RpcUnreachable(RpcError):
    """No usable answer from the URL, after the retries (refused, timed out, 5xx)."""


class MethodUnavailable(RpcError):
    """The node does not serve a method pevm needs."""


class ArchiveRequired(RpcError):
    """The node cannot trace the block: it lacks the debug API or historical state."""


class BlockNotFound(RpcError):
    """The node has no block with that number."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request, backoff and the socket timeout."""

    #: attempts in all (1: no retry)
    attempts: int = 6
    #: first backoff in seconds; doubles each retry, up to ``max_delay``
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: seconds to wait for a connection and for each read of the answer
    timeout: float = 120.0


@dataclass
class Counters:
    """What a client sent: for reporting requests per block."""

    requests: int = 0
    calls: int = 0
    retries: int = 0


class _Transient(Exception):
    """A failure worth trying again (internal)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL, else an RpcError naming the problem."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RpcError(f"--rpc: expected an http:// or https:// URL, got {url!r}")
    return url


def redact(url: str) -> str:
    """The URL as it may be printed: providers put API keys in the path or query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    hidden = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{hidden}"


class RpcClient:
    """JSON-RPC over HTTP POST, batched, with retries; safe to share among threads."""

    def __init__(self, url: str, retry: RetryPolicy = RetryPolicy()) -> None:
        self.url = check_url(url)
        self.name = redact(url)
        self.retry = retry
        self.counters = Counters()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]],
              return_errors: bool = False) -> list[Any]:
        """The results of ``calls``, in order; sent as few batched requests.

        A call the node answers with a (final) error raises its RpcError, or with
        ``return_errors`` stands in the list as that RpcError: a caller can then
        look at the other answers first (a missing block before a failed trace).
        """
        results: list[Any] = []
        for start in range(0, len(calls), MAX_BATCH):
            results.extend(self._batch(calls[start:start + MAX_BATCH]))
        if not return_errors:
            for result in results:
                if isinstance(result, RpcError):
                    raise result
        return results

    def _batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        with self._lock:
            ids = [next(self._ids) for _ in calls]
        pending = dict(zip(ids, calls))
        answers: dict[int, Any] = {}
        for attempt in itertools.count(1):
            try:
                self._send(pending, answers)
            except _Transient as exc:
                if attempt >= self.retry.attempts:
                    raise RpcUnreachable(
                        f"{self.name}: {exc} (gave up after {attempt} attempts)") from None
                self._sleep(attempt, exc.wait)
                continue
            if not pending:
                return [answers[i] for i in ids]
            # Some calls of the batch hit a "try later" error: send just those again.
            if attempt >= self.retry.attempts:
                raise RpcError(f"{self.name}: still refused after {attempt} attempts: "
                               f"{next(iter(pending.values()))[0]}")
            self._sleep(attempt, None)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, wait: float | None) -> None:
        with self._lock:
            self.counters.retries += 1
        delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        # Jitter spreads the retries of concurrent threads out.
        delay *= random.uniform(0.75, 1.25)
        if wait is not None:
            delay = max(delay, min(wait, self.retry.max_delay))
        time.sleep(delay)

    def _send(self, pending: dict[int, tuple[str, Sequence[Any]]],
              answers: dict[int, Any]) -> None:
        """POST ``pending``; move every final answer into ``answers``."""
        body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                           for i, (m, p) in pending.items()]).encode()
        with self._lock:
            self.counters.requests += 1
            self.counters.calls += len(pending)
        reply = self._post(body)
        if isinstance(reply, dict):
            # A lone error object: the server refused the batch as a whole.
            error = reply.get("error") or {"message": "unexpected answer"}
            if is_transient(error):
                raise _Transient(str(error.get("message", "try later")))
            raise error_for(error, "batch", self.name)
        if not isinstance(reply, list):
            raise RpcError(f"{self.name}: expected a JSON-RPC batch answer, got "
                           f"{type(reply).__name__}")
        for item in reply:
            ident = item.get("id") if isinstance(item, dict) else None
            if ident not in pending:
                continue
            method = pending[ident][0]
            if item.get("error") is not None:
                if is_transient(item["error"]):
                    continue
                answers[ident] = error_for(item["error"], method, self.name)
            else:
                answers[ident] = item.get("result")
            del pending[ident]

    def _post(self, body: bytes) -> Any:
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json",
            "Accept-Encoding": "gzip", "User-Agent": f"pevm/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=self.retry.timeout) as response:
                data = response.read()
                if response.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
        except urllib.error.HTTPError as exc:
            if exc.code in TRANSIENT_HTTP:
                raise _Transient(f"HTTP {exc.code} {exc.reason}",
                                 _retry_after(exc.headers.get("Retry-After"))) from None
            raise RpcError(f"{self.name}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror):
                raise RpcUnreachable(f"{self.name}: cannot resolve the host "
                                     f"({exc.reason.strerror})") from None
            raise _Transient(_reason(exc.reason)) from None
        except (http.client.HTTPException, OSError) as exc:
            # Dropped connections, resets and read timeouts (TimeoutError is an OSError).
            raise _Transient(_reason(exc)) from None
        try:
            return json.loads(data)
        except ValueError:
            raise RpcError(f"{self.name}: the answer is not JSON "
                           f"({data[:60]!r})") from None


def _reason(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return exc
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text if isinstance(text, str) else repr(text)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return None


def is_transient(error: Any) -> bool:
    """Whether a JSON-RPC error object means "try later"."""
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return (error.get("code") in TRANSIENT_CODES
            or any(word in message for word in _TRANSIENT_WORDS))


def error_for(error: Any, method: str, name: str) -> RpcError:
    """The RpcError (subclass) a final JSON-RPC error object means."""
    if not isinstance(error, dict):
        return RpcError(f"{name}: {method}: malformed error {error!r}")
    code, message = error.get("code"), str(error.get("message", "")).strip()
    text = f"{name}: {method}: {message or 'error'}" + (f" (code {code})" if code else "")
    lowered = message.lower()
    if any(word in lowered for word in _ARCHIVE_WORDS):
        return ArchiveRequired(f"{text}: the node has pruned this block's state; "
                              "an archive node is needed")
    if code == -32601 or any(word in lowered for word in (
            "does not exist", "not available", "not supported", "method not found")):
        if method.startswith("debug_"):
            return ArchiveRequired(f"{text}: pevm fetch needs a node that serves the "
                                  "debug API (debug_traceBlockByNumber with geth's "
                                  "prestateTracer) and keeps historical state, i.e. "
                                  "an archive node")
        return MethodUnavailable(text)
    return RpcError(text)
