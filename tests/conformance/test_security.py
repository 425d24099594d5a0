"""TLS, mutual TLS, bearer tokens and reserved metadata, with certificates made in the test."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from transport import (
    AsyncClient,
    AsyncContext,
    Client,
    Context,
    Message,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport.health.service import Health
from transport.security import (
    AsyncTokenAuthInterceptor,
    TokenAuth,
    TokenAuthInterceptor,
    bearer_metadata,
    bearer_token_credentials,
    channel_credentials,
    server_credentials,
)
from transport.testing import serve, serve_async

# --- a tiny public key infrastructure


@dataclass(frozen=True)
class Identity:
    certificate: bytes
    key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(signer_cert.subject if signer_cert is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=usage is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def _identity(pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Identity:
    certificate, key = pair
    return Identity(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass(frozen=True)
class Pki:
    ca: bytes
    other_ca: bytes
    server: Identity
    client: Identity
    rogue_client: Identity  # signed by the other CA


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = _issue("test ca")
    other = _issue("other ca")
    return Pki(
        ca=_identity(ca).certificate,
        other_ca=_identity(other).certificate,
        server=_identity(_issue("server", issuer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)),
        client=_identity(_issue("client", issuer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)),
        rogue_client=_identity(
            _issue("rogue", issuer=other, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        ),
    )


# --- a service that counts what reaches it


class Secret(Message):
    name: str = ""


class Vault(Service, Protocol, name="test.security.Vault"):
    @rpc
    def Read(self, request: Secret) -> Secret: ...

    @rpc
    def List(self, request: Secret) -> Iterator[Secret]: ...

    @rpc
    def Store(self, requests: Iterator[Secret]) -> Secret: ...


class VaultServer:
    def __init__(self) -> None:
        self.served = 0

    def Read(self, request: Secret, context: Context) -> Secret:
        self.served += 1
        return Secret(name=f"read {request.name}")

    def List(self, request: Secret, context: Context) -> Iterator[Secret]:
        self.served += 1
        yield Secret(name="a")

    def Store(self, requests: Iterator[Secret], context: Context) -> Secret:
        self.served += 1
        return Secret(name=",".join(r.name for r in requests))


class AsyncVaultServer:
    def __init__(self) -> None:
        self.served = 0

    async def Read(self, request: Secret, context: AsyncContext) -> Secret:
        self.served += 1
        return Secret(name=f"read {request.name}")

    async def List(self, request: Secret, context: AsyncContext) -> AsyncIterator[Secret]:
        self.served += 1
        yield Secret(name="a")

    async def Store(self, requests: AsyncIterator[Secret], context: AsyncContext) -> Secret:
        self.served += 1
        return Secret(name=",".join([r.name async for r in requests]))


def _code(call: Any) -> StatusCode:
    try:
        call()
    except RpcError as exc:
        return exc.code
    return StatusCode.OK


# --- TLS and mutual TLS


def test_tls_from_files_serves_a_client_that_trusts_the_ca(pki: Pki, tmp_path: Path) -> None:
    for name, data in {"server.pem": pki.server.certificate, "server.key": pki.server.key}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "ca.pem").write_bytes(pki.ca)
    creds = server_credentials(tmp_path / "server.pem", str(tmp_path / "server.key"))
    vault = VaultServer()
    client_creds = channel_credentials(tmp_path / "ca.pem")
    with serve(
        bind(Vault, vault), credentials=creds, client_options={"credentials": client_creds}
    ) as server:
        assert server.client.call(Vault.Read, Secret(name="x"), timeout=10).name == "read x"
        with Client.connect(server.address, timeout=10) as plaintext:  # no TLS: refused
            assert _code(lambda: plaintext.call(Vault.Read, Secret())) is StatusCode.UNAVAILABLE
    assert vault.served == 1


def test_a_client_with_the_wrong_ca_fails_the_handshake_and_nothing_is_served(pki: Pki) -> None:
    vault = VaultServer()
    creds = server_credentials(pki.server.certificate, pki.server.key)
    with serve(bind(Vault, vault), credentials=creds) as server:
        wrong = channel_credentials(pki.other_ca)
        with Client.connect(server.address, credentials=wrong, timeout=10) as client:
            assert _code(lambda: client.call(Vault.Read, Secret())) is StatusCode.UNAVAILABLE
            assert _code(lambda: list(client.call(Vault.List, Secret()))) is (
                StatusCode.UNAVAILABLE
            )
    assert vault.served == 0


def test_mutual_tls_refuses_clients_without_a_certificate_from_the_ca(pki: Pki) -> None:
    vault = VaultServer()
    creds = server_credentials(pki.server.certificate, pki.server.key, client_ca=pki.ca)
    with serve(bind(Vault, vault), credentials=creds) as server:
        refused = {
            "no certificate": channel_credentials(pki.ca),
            "certificate of another CA": channel_credentials(
                pki.ca,
                certificate_chain=pki.rogue_client.certificate,
                private_key=pki.rogue_client.key,
            ),
        }
        for why, client_creds in refused.items():
            with Client.connect(server.address, credentials=client_creds, timeout=10) as client:
                assert _code(lambda c=client: c.call(Vault.Read, Secret())) is (
                    StatusCode.UNAVAILABLE
                ), why
        assert vault.served == 0
        good = channel_credentials(
            pki.ca, certificate_chain=pki.client.certificate, private_key=pki.client.key
        )
        with Client.connect(server.address, credentials=good, timeout=10) as client:
            assert client.call(Vault.Store, iter([Secret(name="a"), Secret(name="b")])).name == (
                "a,b"
            )
    assert vault.served == 1


@pytest.mark.anyio
async def test_mutual_tls_on_the_asyncio_server(pki: Pki) -> None:
    vault = AsyncVaultServer()
    creds = server_credentials(pki.server.certificate, pki.server.key, client_ca=pki.ca)
    good = channel_credentials(
        pki.ca, certificate_chain=pki.client.certificate, private_key=pki.client.key
    )
    async with serve_async(
        bind(Vault, vault), credentials=creds, client_options={"credentials": good}
    ) as server:
        assert (await server.client.call(Vault.Read, Secret(name="y"), timeout=10)).name == (
            "read y"
        )
        async with AsyncClient.connect(
            server.address, credentials=channel_credentials(pki.ca), timeout=10
        ) as anonymous:
            with pytest.raises(RpcError) as refused:
                await anonymous.call(Vault.Read, Secret())
            assert refused.value.code is StatusCode.UNAVAILABLE
    assert vault.served == 1


def test_credential_arguments_are_checked(pki: Pki) -> None:
    with pytest.raises(ValueError, match="both certificate_chain and private_key"):
        channel_credentials(pki.ca, certificate_chain=pki.client.certificate)
    with pytest.raises(ValueError, match="needs client_ca"):
        server_credentials(pki.server.certificate, pki.server.key, require_client_auth=True)
    with pytest.raises(ValueError, match="empty"):
        bearer_token_credentials("")


# --- bearer tokens

TOKEN = "s3cret-token"


def test_token_auth_refuses_missing_and_wrong_tokens_before_the_handler() -> None:
    vault = VaultServer()
    health = Health()
    with serve(
        bind(Vault, vault), health, interceptors=[TokenAuthInterceptor([TOKEN, "other"])]
    ) as server:
        client = server.client
        for metadata in (None, bearer_metadata("wrong"), [("authorization", TOKEN)]):
            assert _code(lambda m=metadata: client.call(Vault.Read, Secret(), metadata=m)) is (
                StatusCode.UNAUTHENTICATED
            )
            assert _code(
                lambda m=metadata: list(client.call(Vault.List, Secret(), metadata=m))
            ) is (StatusCode.UNAUTHENTICATED)
            assert (
                _code(lambda m=metadata: client.call(Vault.Store, iter([Secret()]), metadata=m))
                is StatusCode.UNAUTHENTICATED
            )
        assert vault.served == 0
        # An unknown method is refused like a known one: nothing is learnt without a token.
        raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = client.channel.unary_unary(
            "/test.security.Nothing/Here"
        )
        with pytest.raises(grpc.RpcError) as unknown:
            raw(b"{}", timeout=10)
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The health service stays open for probes.
        stub = health_pb2_grpc.HealthStub(client.channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        # The right token, per call or for the whole channel (local plaintext only).
        assert client.call(Vault.Read, Secret(name="m"), metadata=bearer_metadata(TOKEN)).name == (
            "read m"
        )
        with Client.connect(
            server.address, credentials=bearer_token_credentials(TOKEN), timeout=10
        ) as authorised:
            assert authorised.call(Vault.Read, Secret(name="c")).name == "read c"
            assert [s.name for s in authorised.call(Vault.List, Secret())] == ["a"]
    assert vault.served == 3


@pytest.mark.anyio
async def test_token_auth_on_the_asyncio_server() -> None:
    vault = AsyncVaultServer()
    async with serve_async(
        bind(Vault, vault), Health(), interceptors=[AsyncTokenAuthInterceptor([TOKEN])]
    ) as server:
        with pytest.raises(RpcError) as refused:
            await server.client.call(Vault.Read, Secret())
        assert refused.value.code is StatusCode.UNAUTHENTICATED
        with pytest.raises(RpcError) as refused_stream:
            async for _ in server.client.call(Vault.List, Secret(), metadata=bearer_metadata("x")):
                pass
        assert refused_stream.value.code is StatusCode.UNAUTHENTICATED
        assert vault.served == 0
        async with AsyncClient.connect(
            server.address, credentials=bearer_token_credentials(TOKEN), timeout=10
        ) as authorised:
            assert (await authorised.call(Vault.Store, [Secret(name="z")])).name == "z"
        health = health_pb2_grpc.HealthStub(server.client.channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1
    assert vault.served == 1


def test_token_over_tls(pki: Pki) -> None:
    creds = server_credentials(pki.server.certificate, pki.server.key)
    tls_with_token = bearer_token_credentials(TOKEN, tls=channel_credentials(pki.ca))
    with serve(
        bind(Vault, VaultServer()),
        credentials=creds,
        interceptors=[TokenAuthInterceptor(TokenAuth([TOKEN]))],
        client_options={"credentials": tls_with_token},
    ) as server:
        assert server.client.call(Vault.Read, Secret(name="t"), timeout=10).name == "read t"


def test_token_auth_rules() -> None:
    auth = TokenAuth([TOKEN], open_methods=["/test.security.Vault/Read"])
    assert auth.is_open("/grpc.health.v1.Health/Watch")
    assert auth.is_open("/test.security.Vault/Read")
    assert not auth.is_open("/test.security.Vault/List")
    assert auth.accepts([("authorization", f"bearer {TOKEN}")])  # the scheme ignores case
    assert not auth.accepts([("authorization", f"Basic {TOKEN}")])
    assert not auth.accepts([("authorization", f"Bearer {TOKEN}x")])
    assert not auth.accepts([("authorization", f"Bearer {TOKEN[:-1]}")])
    twice = [("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer other")]
    assert not auth.accepts(twice)  # ambiguous: refused
    assert not auth.accepts(None)
    with pytest.raises(ValueError):
        TokenAuth([])
    with pytest.raises(ValueError):
        TokenAuth(["ok", ""])


# --- reserved metadata


def test_clients_refuse_metadata_keys_reserved_by_grpc(
    transport_serve: Any,
) -> None:
    vault = VaultServer()
    server = transport_serve(bind(Vault, vault))
    with pytest.raises(ValueError, match=r"'grpc-timeout'.*reserved by gRPC"):
        Client(server.client.channel, metadata=[("grpc-timeout", "1S")])
    with pytest.raises(ValueError, match="reserved by gRPC"):
        server.client.call(Vault.Read, Secret(), metadata=[("grpc-status", "0")])
    assert vault.served == 0
    assert server.client.call(Vault.Read, Secret(), metadata=[("x-grpc-ok", "1")]).name == "read "


@pytest.mark.anyio
async def test_asyncio_client_refuses_reserved_metadata_keys() -> None:
    vault = AsyncVaultServer()
    async with serve_async(bind(Vault, vault)) as server:
        with pytest.raises(ValueError, match="reserved by gRPC"):
            AsyncClient.connect(server.address, metadata=[("grpc-encoding", "gzip")])
        with pytest.raises(ValueError, match="reserved by gRPC"):
            await server.client.call(Vault.Read, Secret(), metadata=[("grpc-x", "1")])
    assert vault.served == 0
