"""The HTTP under prometheus-api-client: a total deadline, a size cap, no redirects, error answers reduced.

requests applies its timeout to each socket operation, so a server that drips one byte a second never times
out; it follows redirects; and prometheus-api-client puts the whole body of an error answer into its
exception text. This adapter replaces requests' own transport on the library's session: it speaks HTTP/1.1
through http.client on sockets that re-arm their timeout to what is left of the request's deadline before
every operation, and that another thread can shut down at once (`Abort`), so a request ends at its deadline
whatever the server does. Error answers become exceptions that carry only Prometheus' `errorType`/`error`
fields, clipped, or just the status code; a foreign body never reaches a message.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

_CHUNK = 64 * 1024
# Error answers are read only this far: the fields we keep are short.
_ERROR_BODY_LIMIT = 64 * 1024


class PromHTTPError(requests.RequestException):
    """A request failed; the message is ours and holds nothing the server sent."""


class DeadlineError(PromHTTPError):
    pass


class RedirectError(PromHTTPError):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} (a redirect, which is not followed)")
        self.status = status


class TooLargeError(PromHTTPError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit


class ServerAnswerError(PromHTTPError):
    """A non-200 answer, reduced to Prometheus' own fields when the body carried them."""

    def __init__(self, status: int, error_type: str | None, error: str | None) -> None:
        detail = f"{error_type or 'error'}: {error}" if error else f"HTTP {status}"
        super().__init__(detail)
        self.status = status
        self.error_type = error_type
        self.error = error


class UnreachableError(PromHTTPError):
    pass


class Abort:
    """Lets another thread end a request now: the request's socket is shut down, its thread wakes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.aborted = False

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            if self.aborted:
                raise DeadlineError("the request was abandoned")
            self._socket = sock

    def release(self) -> None:
        """The request is over: a late abort must not shut down a connection that went back to the pool."""
        with self._lock:
            self._socket = None

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            sock, self._socket = self._socket, None
        if sock is not None:
            # The plain socket's shutdown, also for TLS: it wakes the reader and changes no SSL state.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


@dataclass
class RequestScope:
    """The deadline (time.monotonic) and abort handle of the request the current thread makes."""

    deadline: float
    abort: Abort = field(default_factory=Abort)

    def remaining(self) -> float:
        if self.abort.aborted:
            raise DeadlineError("the request was abandoned")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineError("deadline passed")
        return left


_local = threading.local()


@contextmanager
def request_scope(scope: RequestScope) -> Iterator[RequestScope]:
    """Requests this thread sends inside the block obey `scope` (the library cannot pass it through)."""
    previous = getattr(_local, "scope", None)
    _local.scope = scope
    try:
        yield scope
    finally:
        _local.scope = previous


class _DeadlineSocket(socket.socket):
    """Each operation may block only for what is left of the request's deadline."""

    scope: RequestScope | None = None

    def _arm(self) -> None:
        if self.scope is not None:
            self.settimeout(self.scope.remaining())

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return super().recv(bufsize, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self._arm()
        super().sendall(data, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    scope: RequestScope | None = None

    def _arm(self) -> None:
        if self.scope is not None:
            self.settimeout(self.scope.remaining())

    def recv_into(self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self._arm()
        super().sendall(data, flags)


def _connect(host: str, port: int, scope: RequestScope) -> _DeadlineSocket:
    last: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = _DeadlineSocket(family, kind, proto)
        try:
            scope.abort.attach(sock)
            sock.settimeout(scope.remaining())
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.scope = scope
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address for {host}")


class _Connection:
    """One keep-alive HTTP/1.1 connection whose socket obeys the scope of the request it carries."""

    def __init__(self, scheme: str, host: str, port: int, context: ssl.SSLContext | None) -> None:
        self.scheme, self.host, self.port, self.context = scheme, host, port, context
        self.http = http.client.HTTPConnection(host, port)

    def bind(self, scope: RequestScope) -> None:
        sock = self.http.sock
        if sock is None:
            raw = _connect(self.host, self.port, scope)
            if self.context is not None:
                tls = self.context.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
                assert isinstance(tls, _DeadlineSSLSocket)
                tls.scope = scope
                scope.abort.attach(tls)
                tls.do_handshake()
                sock = tls
            else:
                sock = raw
            self.http.sock = sock
        else:
            if isinstance(sock, _DeadlineSocket | _DeadlineSSLSocket):
                sock.scope = scope
            scope.abort.attach(sock)

    def close(self) -> None:
        self.http.close()


class BoundedAdapter(BaseAdapter):
    """requests transport for one Prometheus server: bounded in time and size, never redirected."""

    def __init__(self, *, max_response_bytes: int, default_timeout: float, pool_size: int) -> None:
        super().__init__()
        self._max_bytes = max_response_bytes
        self._default_timeout = default_timeout
        self._pool_size = pool_size
        self._idle: dict[tuple[Any, ...], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}

    # requests' signature; proxies are ignored on purpose (the session does not read them from the env).
    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        scope: RequestScope | None = getattr(_local, "scope", None)
        if scope is None:
            seconds = timeout if isinstance(timeout, int | float) else self._default_timeout
            scope = RequestScope(deadline=time.monotonic() + seconds)
        url = urlsplit(request.url or "")
        scheme = url.scheme.lower()
        if scheme not in ("http", "https") or not url.hostname:
            raise UnreachableError(f"unsupported URL scheme {scheme!r}")
        port = url.port or (443 if scheme == "https" else 80)
        verify = verify if isinstance(verify, str | bool) else True
        key = (scheme, url.hostname, port, verify, _cert_key(cert))
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        headers = {k: v for k, v in request.headers.items() if k.lower() != "accept-encoding"}
        headers["Accept-Encoding"] = "identity"  # a compressed body would slip past the size cap
        body = request.body.encode() if isinstance(request.body, str) else request.body
        try:
            status, reason, answer_headers, content = self._exchange(
                key, scope, request.method or "GET", target, headers, body
            )
        except PromHTTPError:
            raise
        except OSError as exc:
            if scope.abort.aborted:
                raise DeadlineError("the request was abandoned") from None
            if isinstance(exc, TimeoutError):
                raise DeadlineError("deadline passed") from None
            raise UnreachableError(_describe_os_error(exc)) from None
        except http.client.HTTPException as exc:
            if scope.abort.aborted:
                raise DeadlineError("the request was abandoned") from None
            # The class name only: some of these carry the offending line the server sent.
            raise UnreachableError(f"not a valid HTTP answer ({type(exc).__name__})") from None
        if 300 <= status < 400:
            raise RedirectError(status)
        if status != 200:
            raise reduce_error_answer(status, content)
        response = requests.Response()
        response.status_code = status
        response.reason = reason
        response.headers = CaseInsensitiveDict(answer_headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = content
        response.url = request.url or ""
        response.request = request
        return response

    def _exchange(
        self,
        key: tuple[Any, ...],
        scope: RequestScope,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn, reused = self._checkout(key)
        try:
            try:
                conn.bind(scope)
                conn.http.request(method, target, body=body, headers=headers)
                raw = conn.http.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused or scope.abort.aborted:
                    raise
                # The server closed an idle keep-alive connection; the query is idempotent: once more, fresh.
                conn.close()
                conn = self._new_connection(key)
                conn.bind(scope)
                conn.http.request(method, target, body=body, headers=headers)
                raw = conn.http.getresponse()
            limit = self._max_bytes if raw.status == 200 else min(self._max_bytes, _ERROR_BODY_LIMIT)
            content, complete = (b"", False) if 300 <= raw.status < 400 else _read_capped(raw, limit)
            keep = complete and not raw.will_close and not scope.abort.aborted
        except BaseException:
            conn.close()
            raise
        scope.abort.release()
        if keep:
            self._checkin(key, conn)
        else:
            conn.close()
        return raw.status, raw.reason, raw.getheaders(), content

    def _checkout(self, key: tuple[Any, ...]) -> tuple[_Connection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        return self._new_connection(key), False

    def _checkin(self, key: tuple[Any, ...], conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._pool_size:
                idle.append(conn)
                return
        conn.close()

    def _new_connection(self, key: tuple[Any, ...]) -> _Connection:
        scheme, host, port, verify, cert = key
        context = self._context(verify, cert) if scheme == "https" else None
        return _Connection(scheme, host, port, context)

    def _context(self, verify: bool | str, cert: Any) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get((verify, cert))
            if context is None:
                context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
                if verify is False:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                if cert:
                    certfile, keyfile = cert if isinstance(cert, tuple) else (cert, None)
                    context.load_cert_chain(certfile, keyfile)
                context.sslsocket_class = _DeadlineSSLSocket
                self._contexts[(verify, cert)] = context
            return context

    def close(self) -> None:
        with self._lock:
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()


def _cert_key(cert: Any) -> Any:
    return tuple(cert) if isinstance(cert, list) else cert


def _read_capped(raw: http.client.HTTPResponse, limit: int) -> tuple[bytes, bool]:
    """The body and whether it was read whole; beyond `limit` a 200 answer fails, an error answer is cut."""
    strict = raw.status == 200
    length = raw.getheader("Content-Length")
    if strict and length and length.isdigit() and int(length) > limit:
        raise TooLargeError(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = raw.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            if strict:
                raise TooLargeError(limit)
            raw.close()
            return b"".join(parts)[:limit], False
    return b"".join(parts), True


def reduce_error_answer(status: int, body: bytes) -> ServerAnswerError:
    """Prometheus' `errorType` and `error`, clipped and printable; anything else only as "HTTP <code>"."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return ServerAnswerError(status, None, None)
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
        return ServerAnswerError(status, None, None)
    error_type = answer.get("errorType")
    kind = _printable(error_type, 40) if isinstance(error_type, str) else None
    return ServerAnswerError(status, kind or None, _printable(answer["error"], 300) or None)


def _printable(text: str, limit: int) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return clean if len(clean) <= limit else clean[:limit] + "..."


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    return exc.strerror or type(exc).__name__
