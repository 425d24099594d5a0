"""Who is calling: the transport security of a call, its verified client certificate, its token.

A handler reads it with ``context.peer_identity()`` (sync and asyncio alike)
and authorises by it::

    def Read(self, request, context):
        peer = context.peer_identity()
        if peer.certificate is None or "spiffe://acme/reader" not in peer.certificate.uris:
            context.abort(StatusCode.PERMISSION_DENIED, "readers only")

Everything here comes from what the server verified: grpcio's auth context
(filled by the TLS handshake) and the principal of the bearer token that a
:class:`~transport.security.TokenAuthInterceptor` admitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ClientCertificate", "PeerIdentity", "peer_identity"]

#: The attribute of a grpcio servicer context that carries an admitted token's principal.
PRINCIPAL_ATTRIBUTE = "transport_token_principal"

# grpcio's names for the transport security in use; "ssl" is TLS.
_SECURITY_NAMES = {"ssl": "tls"}


@dataclass(frozen=True)
class ClientCertificate:
    r"""A client certificate the server verified in a mutual TLS handshake.

    ``subject`` is the distinguished name as OpenSSL prints it (RFC 2253,
    most specific first: ``CN=alice,O=Acme\, Inc``); the other fields are the
    subject alternative names by kind, and the certificate itself in PEM.
    """

    subject: str
    common_name: str | None
    dns_names: tuple[str, ...]
    uris: tuple[str, ...]
    emails: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    pem: str

    @property
    def subject_alternative_names(self) -> tuple[str, ...]:
        """Every subject alternative name, whatever its kind."""
        return self.dns_names + self.uris + self.emails + self.ip_addresses


@dataclass(frozen=True)
class PeerIdentity:
    """What the server knows for certain about the caller of one call."""

    #: The caller's address as grpcio reports it (``ipv4:127.0.0.1:port``): not verified.
    address: str
    #: The transport security of the connection: ``"insecure"``, ``"tls"``,
    #: ``"local"`` (local credentials) or another name grpcio gives.
    security: str
    #: The verified client certificate (mutual TLS), else ``None``.
    certificate: ClientCertificate | None
    #: The principal of the bearer token a token interceptor admitted the call with, else ``None``.
    token_principal: str | None

    @property
    def authenticated(self) -> bool:
        """Whether a client certificate or a bearer token vouches for the caller."""
        return self.certificate is not None or self.token_principal is not None


def _texts(properties: Mapping[str, Sequence[bytes]], name: str) -> tuple[str, ...]:
    return tuple(value.decode("utf-8", "replace") for value in properties.get(name, ()))


def _first(properties: Mapping[str, Sequence[bytes]], name: str) -> str | None:
    values = _texts(properties, name)
    return values[0] if values else None


def _certificate(properties: Mapping[str, Sequence[bytes]]) -> ClientCertificate | None:
    pem = _first(properties, "x509_pem_cert")
    if pem is None:  # no certificate was asked for, so none was verified
        return None
    return ClientCertificate(
        subject=_first(properties, "x509_subject") or "",
        common_name=_first(properties, "x509_common_name"),
        dns_names=_texts(properties, "peer_dns"),
        uris=_texts(properties, "peer_uri"),
        emails=_texts(properties, "peer_email"),
        ip_addresses=_texts(properties, "peer_ip"),
        pem=pem,
    )


def peer_identity(grpc_context: Any) -> PeerIdentity:
    """The :class:`PeerIdentity` of the call of a grpcio servicer context (sync or asyncio)."""
    properties: Mapping[str, Sequence[bytes]] = grpc_context.auth_context() or {}
    security = _first(properties, "transport_security_type") or "insecure"
    principal = getattr(grpc_context, PRINCIPAL_ATTRIBUTE, None)
    return PeerIdentity(
        address=str(grpc_context.peer()),
        security=_SECURITY_NAMES.get(security, security),
        certificate=_certificate(properties),
        token_principal=principal if isinstance(principal, str) else None,
    )
