"""TLS, mutual TLS and per-call bearer tokens, for servers and clients.

Certificates and keys are PEM, given as ``bytes`` (the PEM itself) or as a
path (``str`` or :class:`os.PathLike`) to a PEM file::

    server_creds = server_credentials("server.pem", "server.key", client_ca="ca.pem")
    port = server.add_secure_port("0.0.0.0:8443", server_creds)

    tls = channel_credentials("ca.pem", certificate_chain="client.pem", private_key="client.key")
    client = Client.connect("db.internal:8443", credentials=tls)

Bearer tokens: :class:`TokenAuthInterceptor` (``grpc.server``) and
:class:`AsyncTokenAuthInterceptor` (``grpc.aio.server``) end every call without
``authorization: Bearer <token>`` for an accepted token UNAUTHENTICATED, before
the handler runs; the health service stays open for probes. The handler of an
admitted call reads the token's principal from ``context.peer_identity()``.
:func:`bearer_token_credentials` makes a client send the token with every call.
"""

from __future__ import annotations

import hmac
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import grpc
import grpc.aio

from ._status_map import abort, abort_async
from .health.service import HEALTH_SERVICE
from .peer import PRINCIPAL_ATTRIBUTE
from .status import StatusCode

__all__ = [
    "AsyncTokenAuthInterceptor",
    "PemSource",
    "TokenAuth",
    "TokenAuthInterceptor",
    "bearer_metadata",
    "bearer_token_credentials",
    "channel_credentials",
    "server_credentials",
]

#: PEM data (``bytes``) or the path of a PEM file (``str`` or ``os.PathLike``).
PemSource = Union[bytes, str, "os.PathLike[str]"]

#: The metadata key that carries the token, as in RFC 6750 and gRPC's own token credentials.
AUTHORIZATION = "authorization"


def _pem(source: PemSource) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def _optional_pem(source: PemSource | None) -> bytes | None:
    return None if source is None else _pem(source)


def server_credentials(
    certificate_chain: PemSource,
    private_key: PemSource,
    *,
    client_ca: PemSource | None = None,
    require_client_auth: bool | None = None,
) -> grpc.ServerCredentials:
    """TLS for a server: its certificate chain and private key, in one of two modes.

    - Without ``client_ca``, TLS: the server proves who it is and the
      connection is private. Clients are not asked for a certificate, so none
      is checked and handlers see none (``peer_identity().certificate`` is
      ``None``).
    - With ``client_ca``, mutual TLS: every client must present a certificate
      that chains to ``client_ca`` and is within its validity period. A client
      without one, with one from another CA, or with an expired one fails the
      handshake and reaches no handler; the verified certificate's subject and
      subject alternative names reach the handler (``context.peer_identity()``).

    There is no optional mode: grpcio either requires and verifies a client
    certificate or does not ask for one, so ``require_client_auth=False`` with
    ``client_ca`` is refused (ValueError) rather than check nothing.
    ``require_client_auth`` may be left out: it follows ``client_ca``.
    """
    if client_ca is None and require_client_auth:
        raise ValueError(
            "require_client_auth needs client_ca, the CA that signs client certificates"
        )
    if client_ca is not None and require_client_auth is False:
        raise ValueError(
            "optional client certificates are not supported: grpcio would not ask the client "
            "for one, so nothing would be checked; pass client_ca to require and verify them "
            "(mutual TLS), or leave client_ca out for TLS without client certificates"
        )
    return grpc.ssl_server_credentials(
        [(_pem(private_key), _pem(certificate_chain))],
        root_certificates=_optional_pem(client_ca),
        require_client_auth=client_ca is not None,
    )


def channel_credentials(
    root_certificates: PemSource | None = None,
    *,
    certificate_chain: PemSource | None = None,
    private_key: PemSource | None = None,
) -> grpc.ChannelCredentials:
    """TLS for a client: the CA to trust (``None``: the system's roots).

    ``certificate_chain`` and ``private_key`` (both or neither) are the
    client's own certificate, for servers that require mutual TLS.
    """
    if (certificate_chain is None) != (private_key is None):
        raise ValueError("a client certificate needs both certificate_chain and private_key")
    return grpc.ssl_channel_credentials(
        root_certificates=_optional_pem(root_certificates),
        private_key=_optional_pem(private_key),
        certificate_chain=_optional_pem(certificate_chain),
    )


def bearer_token_credentials(
    token: str, *, tls: grpc.ChannelCredentials | None = None
) -> grpc.ChannelCredentials:
    """Channel credentials that send ``authorization: Bearer <token>`` with every call.

    Over ``tls`` (see :func:`channel_credentials`), or without it over plaintext
    to this machine only (127.0.0.1, ::1, localhost): gRPC refuses to send a
    token in clear text anywhere else.
    """
    if not token:
        raise ValueError("an empty bearer token")
    transport_credentials = (
        tls
        if tls is not None
        else grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    )
    return grpc.composite_channel_credentials(
        transport_credentials, grpc.access_token_call_credentials(token)
    )


def bearer_metadata(token: str) -> list[tuple[str, str | bytes]]:
    """Call metadata carrying ``token``, for one call; :func:`bearer_token_credentials` is safer."""
    return [(AUTHORIZATION, f"Bearer {token}")]


class TokenAuth:
    """The decision: may this call run? Open methods always may; others need an accepted token.

    ``tokens`` maps each principal (who holds the token: ``"billing"``) to its
    token, or lists bare tokens, whose principals are then ``token-1``,
    ``token-2``, ... in order. Tokens are compared in constant time, each one
    every time, so neither the reply time nor its absence tells a caller how
    much of a token was right. ``open_services`` (full service names, by
    default the standard health service) and ``open_methods`` (paths
    ``/package.Service/Method``) need no token.
    """

    def __init__(
        self,
        tokens: Mapping[str, str] | Iterable[str],
        *,
        open_services: Iterable[str] = (HEALTH_SERVICE,),
        open_methods: Iterable[str] = (),
    ) -> None:
        named = (
            dict(tokens)
            if isinstance(tokens, Mapping)
            else {f"token-{i}": token for i, token in enumerate(tokens, 1)}
        )
        self._tokens = [(principal, token.encode()) for principal, token in named.items()]
        if not self._tokens or not all(token for _, token in self._tokens):
            raise ValueError("TokenAuth needs at least one token, none of them empty")
        if len({token for _, token in self._tokens}) != len(self._tokens):
            raise ValueError("two principals share a token: a token must name one principal")
        self.open_services = frozenset(open_services)
        self.open_methods = frozenset(open_methods)

    def is_open(self, method: str) -> bool:
        """Whether ``method`` (a path ``/package.Service/Method``) needs no token."""
        service = method.lstrip("/").split("/", 1)[0]
        return method in self.open_methods or service in self.open_services

    def principal(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
        """The principal of the accepted token ``metadata`` carries as a bearer token, or None."""
        values = [value for key, value in (metadata or ()) if key == AUTHORIZATION]
        if len(values) != 1 or not isinstance(values[0], str):
            return None
        scheme, _, presented = values[0].partition(" ")
        if scheme.lower() != "bearer":  # the scheme is case-insensitive (RFC 7235)
            return None
        candidate = presented.strip().encode()
        found = None
        for principal, token in self._tokens:  # no early exit: the time does not tell which
            if hmac.compare_digest(candidate, token):
                found = principal
        return found

    def accepts(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        """Whether ``metadata`` carries ``authorization: Bearer <an accepted token>``."""
        return self.principal(metadata) is not None

    def allows(self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        """Whether a call of ``method`` with ``metadata`` may reach its handler."""
        return self.is_open(method) or self.accepts(metadata)


_DENIED = "missing or invalid bearer token"


def _deny(requests: Any, context: grpc.ServicerContext) -> None:
    abort(context, StatusCode.UNAUTHENTICATED, _DENIED)


async def _deny_async(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await abort_async(context, StatusCode.UNAUTHENTICATED, _DENIED)


# Refusals take the request side as a stream whatever the method: the call ends
# before its request is read, and an unknown method is refused like a known one,
# so an unauthenticated caller learns nothing of what the server serves.
_REFUSAL: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(_deny)
_ASYNC_REFUSAL: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(_deny_async)


def _as_auth(auth: TokenAuth | Mapping[str, str] | Iterable[str]) -> TokenAuth:
    return auth if isinstance(auth, TokenAuth) else TokenAuth(auth)


class _AdmittedContext:
    """A grpcio servicer context that also carries the principal its token was admitted as."""

    def __init__(self, context: Any, principal: str) -> None:
        self._context = context
        setattr(self, PRINCIPAL_ATTRIBUTE, principal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _behavior_with_principal(behavior: Callable[..., Any], principal: str) -> Callable[..., Any]:
    """``behavior`` run with a context that carries ``principal``, of the same kind of function.

    grpc.aio tells coroutine, async-generator and plain handlers apart by the
    function itself, so the wrapper must be of the same kind.
    """
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            async for reply in behavior(request, _AdmittedContext(context, principal)):
                yield reply

        return stream
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: Any) -> Any:
            return await behavior(request, _AdmittedContext(context, principal))

        return call

    def plain(request: Any, context: Any) -> Any:
        return behavior(request, _AdmittedContext(context, principal))

    return plain


def _with_principal(
    handler: grpc.RpcMethodHandler[Any, Any] | None, principal: str | None
) -> grpc.RpcMethodHandler[Any, Any] | None:
    if handler is None or principal is None:  # unknown method, or open: nothing to carry
        return handler
    kind = (
        f"{'stream' if handler.request_streaming else 'unary'}_"
        f"{'stream' if handler.response_streaming else 'unary'}"
    )
    factory: Callable[..., grpc.RpcMethodHandler[Any, Any]] = getattr(
        grpc, f"{kind}_rpc_method_handler"
    )
    return factory(
        _behavior_with_principal(getattr(handler, kind), principal),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """For ``grpc.server(interceptors=[...])``: UNAUTHENTICATED unless :class:`TokenAuth` allows."""

    def __init__(self, auth: TokenAuth | Mapping[str, str] | Iterable[str]) -> None:
        self.auth = _as_auth(auth)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Hand the call on with its token's principal, or refuse it before its handler runs."""
        method: str = handler_call_details.method
        principal = self.auth.principal(handler_call_details.invocation_metadata)
        if principal is None and not self.auth.is_open(method):
            return _REFUSAL
        return _with_principal(continuation(handler_call_details), principal)


class AsyncTokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """For ``grpc.aio.server(interceptors=[...])``: :class:`TokenAuthInterceptor` for asyncio."""

    def __init__(self, auth: TokenAuth | Mapping[str, str] | Iterable[str]) -> None:
        self.auth = _as_auth(auth)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Hand the call on with its token's principal, or refuse it before its handler runs."""
        method: str = handler_call_details.method
        principal = self.auth.principal(handler_call_details.invocation_metadata)
        if principal is None and not self.auth.is_open(method):
            return _ASYNC_REFUSAL
        return _with_principal(await continuation(handler_call_details), principal)
