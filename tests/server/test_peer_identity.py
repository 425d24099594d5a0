"""What each TLS mode checks, and the caller's identity as handlers see it (sync and asyncio)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from transport import (
    AsyncClient,
    AsyncContext,
    Client,
    Context,
    Message,
    PeerIdentity,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport.security import (
    AsyncTokenAuthInterceptor,
    TokenAuth,
    TokenAuthInterceptor,
    bearer_token_credentials,
    channel_credentials,
    server_credentials,
)
from transport.testing import serve, serve_async

# --- certificates made for the test

Signer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


@dataclass(frozen=True)
class Identity:
    certificate: bytes
    key: bytes


def _issue(
    subject: x509.Name,
    issuer: Signer | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    names: list[x509.GeneralName] | None = None,
    days: tuple[int, int] = (0, 1),
) -> Signer:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0], minutes=-5))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=usage is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def _pem(pair: Signer) -> Identity:
    certificate, key = pair
    return Identity(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _cn(name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organisation is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attributes)


ALICE_NAMES: list[x509.GeneralName] = [
    x509.DNSName("alice.example"),
    x509.UniformResourceIdentifier("spiffe://acme/reader"),
    x509.RFC822Name("alice@acme.example"),
    x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
]


@dataclass(frozen=True)
class Pki:
    ca: bytes
    server: Identity
    alice: Identity  # signed by the CA, with a name of each kind
    rogue: Identity  # signed by another CA
    expired: Identity  # signed by the CA, expired yesterday


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = _issue(_cn("test ca"), None)
    other = _issue(_cn("other ca"), None)
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    server_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    return Pki(
        ca=_pem(ca).certificate,
        server=_pem(
            _issue(_cn("server"), ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, names=server_names)
        ),
        alice=_pem(_issue(_cn("alice", "Acme, Inc"), ca, usage=client, names=ALICE_NAMES)),
        rogue=_pem(_issue(_cn("alice", "Acme, Inc"), other, usage=client, names=ALICE_NAMES)),
        expired=_pem(_issue(_cn("old"), ca, usage=client, days=(-10, -1))),
    )


def _client_tls(pki: Pki, who: Identity | None) -> grpc.ChannelCredentials:
    if who is None:
        return channel_credentials(pki.ca)
    return channel_credentials(pki.ca, certificate_chain=who.certificate, private_key=who.key)


# --- a service that reports who called it, and one that authorises by it


class Who(Message):
    security: str = ""
    subject: str = ""
    common_name: str = ""
    names: list[str] = []
    principal: str = ""


class Whoami(Service, Protocol, name="test.peer.Whoami"):
    @rpc
    def Ask(self, request: Who) -> Who: ...

    @rpc
    def Watch(self, request: Who) -> Iterator[Who]: ...

    @rpc
    def Read(self, request: Who) -> Who: ...


def _who(peer: PeerIdentity) -> Who:
    certificate = peer.certificate
    return Who(
        security=peer.security,
        subject=certificate.subject if certificate else "",
        common_name=(certificate.common_name or "") if certificate else "",
        names=list(certificate.subject_alternative_names) if certificate else [],
        principal=peer.token_principal or "",
    )


def _authorise(peer: PeerIdentity) -> None:
    """Readers: a certificate naming spiffe://acme/reader, or the token of 'reporting'."""
    by_certificate = peer.certificate is not None and "spiffe://acme/reader" in (
        peer.certificate.uris
    )
    if not (by_certificate or peer.token_principal == "reporting"):
        raise RpcError(StatusCode.PERMISSION_DENIED, "readers only")


class WhoamiServer:
    def __init__(self) -> None:
        self.served = 0

    def Ask(self, request: Who, context: Context) -> Who:
        self.served += 1
        return _who(context.peer_identity())

    def Watch(self, request: Who, context: Context) -> Iterator[Who]:
        self.served += 1
        yield _who(context.peer_identity())

    def Read(self, request: Who, context: Context) -> Who:
        _authorise(context.peer_identity())
        return Who(subject="the secret")


class AsyncWhoamiServer:
    def __init__(self) -> None:
        self.served = 0

    async def Ask(self, request: Who, context: AsyncContext) -> Who:
        self.served += 1
        return _who(context.peer_identity())

    async def Watch(self, request: Who, context: AsyncContext) -> AsyncIterator[Who]:
        self.served += 1
        yield _who(context.peer_identity())

    async def Read(self, request: Who, context: AsyncContext) -> Who:
        _authorise(context.peer_identity())
        return Who(subject="the secret")


def _code(call: Any) -> StatusCode:
    try:
        call()
    except RpcError as exc:
        return exc.code
    return StatusCode.OK


async def _async_code(call: Any) -> StatusCode:
    try:
        await call()
    except RpcError as exc:
        return exc.code
    return StatusCode.OK


ALICE = Who(
    security="tls",
    subject="CN=alice,O=Acme\\, Inc",
    common_name="alice",
    names=["alice.example", "spiffe://acme/reader", "alice@acme.example", "10.0.0.7"],
)

# --- the modes


def test_optional_client_certificates_are_refused_with_the_fix_named(pki: Pki) -> None:
    with pytest.raises(ValueError, match="pass client_ca to require and verify them"):
        server_credentials(
            pki.server.certificate, pki.server.key, client_ca=pki.ca, require_client_auth=False
        )
    # Saying what the default already is stays allowed.
    server_credentials(
        pki.server.certificate, pki.server.key, client_ca=pki.ca, require_client_auth=True
    )
    server_credentials(pki.server.certificate, pki.server.key, require_client_auth=False)


def test_tls_without_client_ca_asks_for_no_certificate_and_shows_none(pki: Pki) -> None:
    whoami = WhoamiServer()
    creds = server_credentials(pki.server.certificate, pki.server.key)
    with serve(bind(Whoami, whoami), credentials=creds) as server:
        for who in (None, pki.alice, pki.rogue):  # a certificate is not asked for, not checked
            with Client.connect(server.address, credentials=_client_tls(pki, who)) as client:
                assert client.call(Whoami.Ask, Who(), timeout=10) == Who(security="tls")
    assert whoami.served == 3


@pytest.mark.anyio
async def test_tls_without_client_ca_on_the_asyncio_server(pki: Pki) -> None:
    whoami = AsyncWhoamiServer()
    creds = server_credentials(pki.server.certificate, pki.server.key)
    async with serve_async(bind(Whoami, whoami), credentials=creds) as server:
        for who in (None, pki.rogue):
            async with AsyncClient.connect(
                server.address, credentials=_client_tls(pki, who)
            ) as client:
                assert await client.call(Whoami.Ask, Who(), timeout=10) == Who(security="tls")
    assert whoami.served == 2


def test_mutual_tls_verifies_the_certificate_and_the_handler_sees_who(pki: Pki) -> None:
    whoami = WhoamiServer()
    creds = server_credentials(pki.server.certificate, pki.server.key, client_ca=pki.ca)
    with serve(bind(Whoami, whoami), credentials=creds) as server:
        for why, who in {"none": None, "other CA": pki.rogue, "expired": pki.expired}.items():
            with Client.connect(server.address, credentials=_client_tls(pki, who)) as client:
                code = _code(lambda c=client: c.call(Whoami.Ask, Who(), timeout=10))
                assert code is StatusCode.UNAVAILABLE, why
        assert whoami.served == 0
        with Client.connect(server.address, credentials=_client_tls(pki, pki.alice)) as client:
            assert client.call(Whoami.Ask, Who(), timeout=10) == ALICE
            assert list(client.call(Whoami.Watch, Who(), timeout=10)) == [ALICE]
            assert client.call(Whoami.Read, Who(), timeout=10).subject == "the secret"
    assert whoami.served == 2


@pytest.mark.anyio
async def test_mutual_tls_on_the_asyncio_server(pki: Pki) -> None:
    whoami = AsyncWhoamiServer()
    creds = server_credentials(pki.server.certificate, pki.server.key, client_ca=pki.ca)
    async with serve_async(bind(Whoami, whoami), credentials=creds) as server:
        for why, who in {"none": None, "other CA": pki.rogue, "expired": pki.expired}.items():
            async with AsyncClient.connect(
                server.address, credentials=_client_tls(pki, who)
            ) as client:
                code = await _async_code(lambda c=client: c.call(Whoami.Ask, Who(), timeout=10))
                assert code is StatusCode.UNAVAILABLE, why
        assert whoami.served == 0
        async with AsyncClient.connect(
            server.address, credentials=_client_tls(pki, pki.alice)
        ) as client:
            assert await client.call(Whoami.Ask, Who(), timeout=10) == ALICE
            assert [w async for w in client.call(Whoami.Watch, Who(), timeout=10)] == [ALICE]
    assert whoami.served == 2


def test_plaintext_shows_an_insecure_anonymous_peer() -> None:
    whoami = WhoamiServer()
    with serve(bind(Whoami, whoami)) as server:
        assert server.client.call(Whoami.Ask, Who(), timeout=10) == Who(security="insecure")
        assert _code(lambda: server.client.call(Whoami.Read, Who(), timeout=10)) is (
            StatusCode.PERMISSION_DENIED
        )


# --- bearer-token principals

TOKENS = {"reporting": "r-token", "billing": "b-token"}


def test_the_handler_sees_the_principal_its_token_was_admitted_as() -> None:
    whoami = WhoamiServer()
    with serve(bind(Whoami, whoami), interceptors=[TokenAuthInterceptor(TOKENS)]) as server:
        for principal, token in TOKENS.items():
            with Client.connect(
                server.address, credentials=bearer_token_credentials(token), timeout=10
            ) as client:
                seen = client.call(Whoami.Ask, Who())
                assert (seen.principal, seen.security) == (principal, "insecure")
                assert [w.principal for w in client.call(Whoami.Watch, Who())] == [principal]
                read = _code(lambda c=client: c.call(Whoami.Read, Who()))
                assert read is (
                    StatusCode.OK if principal == "reporting" else StatusCode.PERMISSION_DENIED
                )


@pytest.mark.anyio
async def test_token_principals_on_the_asyncio_server() -> None:
    whoami = AsyncWhoamiServer()
    auth = TokenAuth(["first", "second"], open_methods=["/test.peer.Whoami/Ask"])
    async with serve_async(
        bind(Whoami, whoami), interceptors=[AsyncTokenAuthInterceptor(auth)]
    ) as server:
        assert (await server.client.call(Whoami.Ask, Who(), timeout=10)).principal == ""
        async with AsyncClient.connect(
            server.address, credentials=bearer_token_credentials("second"), timeout=10
        ) as client:
            assert (await client.call(Whoami.Ask, Who())).principal == "token-2"
            assert [w.principal async for w in client.call(Whoami.Watch, Who())] == ["token-2"]


def test_a_token_names_one_principal() -> None:
    with pytest.raises(ValueError, match="share a token"):
        TokenAuth({"a": "same", "b": "same"})
    auth = TokenAuth(TOKENS)
    assert auth.principal([("authorization", "Bearer b-token")]) == "billing"
    assert auth.principal([("authorization", "Bearer nope")]) is None
