"""What the sync and asyncio clients share: their settings, channel and per-call plumbing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import grpc

from .. import deadlines as _deadlines
from ..encoding import batches as _batches
from ..encoding import frames as _attachments
from ..encoding import wires as _wires
from ..interceptors import ClientCall, ClientInterceptor, check_interceptors
from ..metadata import Metadata, MetadataTuple, check_metadata
from ..options import DEFAULT_MAX_CALLS_IN_FLIGHT, compression_of
from ..service import Cardinality, Method
from .calls import RefusalRetry, RequestStream, StreamedResponses
from .channel import Keepalive, RetryPolicy, channel_options
from .slots import check_max_calls_in_flight

ChannelT = TypeVar("ChannelT")
ClientT = TypeVar("ClientT", bound="ClientCore[Any]")
StreamT = TypeVar("StreamT", bound=StreamedResponses[Any])


class ClientCore(Generic[ChannelT]):
    """Settings, the channel and the cached multicallables of a client."""

    # How each kind of client opens its channels, and the extra keywords its
    # channel's multicallable factories take (set by the subclasses).
    _insecure_channel: ClassVar[Callable[..., Any]]
    _secure_channel: ClassVar[Callable[..., Any]]
    _multicallable_kwargs: ClassVar[dict[str, Any]]
    _call_slots: ClassVar[type[Any]]  # CallSlots or AsyncCallSlots
    _asynchronous: ClassVar[bool]  # which kind of interceptor it takes
    # The address connect() was given, which interceptors see as the call's peer.
    _target = ""
    # Whether a sync handler's end cancels this client's calls made under it
    # (from grpcio's thread: only the sync channel's calls may be cancelled so).
    _cancelled_by_caller: ClassVar[bool]

    def __init__(
        self,
        channel: ChannelT,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        owns_channel: bool = False,
        attachments: bool = True,
        wait_for_ready: bool | None = None,
        coalesce: bool = True,
        wire: str = _wires.JSON,
        compression: grpc.Compression | str | None = None,
        max_calls_in_flight: int | None = DEFAULT_MAX_CALLS_IN_FLIGHT,
        interceptors: Sequence[ClientInterceptor] = (),
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        # True: a call waits (up to its timeout) for the channel to connect instead of
        # failing UNAVAILABLE at once, so a client may start before its server.
        self.wait_for_ready = wait_for_ready
        self.metadata = check_metadata(metadata)
        self._owns_channel = owns_channel
        self._callables: dict[str, Any] = {}
        # Calls whose messages carry arrays or bytes announce attachment frames
        # (unless ``attachments`` is False); requests go framed once a server
        # has announced them back in its trailing metadata.
        self.attachments = attachments
        self._peer_reads_frames = False
        # Streaming calls announce that this client reads batches (unless
        # ``coalesce`` is False); requests go in batches once a server has
        # announced back, in its initial metadata, the size of batch it reads.
        self.coalesce = coalesce
        self._batches = (_batches.announcement(_batches.CEILING),)
        self._send_limit = _batches.CEILING
        self._peer_batch_limit = 0
        # Requests go in this wire (announced in metadata) where the method's
        # messages are numbered; responses are read in whichever wire they come.
        self.wire = _wires.check(wire)
        # gzip (or none) for every call unless a call says otherwise.
        self.compression = compression_of(compression)
        # Unary calls beyond this many in flight wait (within their timeout) for
        # one to end, so that a burst stays below the server's stream bound.
        bound = check_max_calls_in_flight(max_calls_in_flight)
        self.max_calls_in_flight = bound
        self._slots = None if bound is None else self._call_slots(bound)
        # What wraps each call, outermost first (see transport.interceptors).
        self.interceptors = check_interceptors(
            interceptors, self._asynchronous, type(self).__name__
        )

    @classmethod
    def connect(
        cls: type[ClientT],
        target: str,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        max_send_message_bytes: int | None = None,
        max_receive_message_bytes: int | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        attachments: bool = True,
        wait_for_ready: bool | None = None,
        coalesce: bool = True,
        wire: str = _wires.JSON,
        compression: grpc.Compression | str | None = None,
        max_calls_in_flight: int | None = DEFAULT_MAX_CALLS_IN_FLIGHT,
        interceptors: Sequence[ClientInterceptor] = (),
        keepalive: Keepalive | None = None,
        retry: RetryPolicy | None = None,
        load_balancing: str | None = None,
        user_agent: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> ClientT:
        """Open a channel to ``target`` (``host:port``) that :meth:`close` closes.

        The channel's own settings: ``keepalive`` (:class:`~transport.Keepalive`:
        pings that keep the connection and notice a silent peer; the server must
        permit them), ``retry`` (:class:`~transport.RetryPolicy`: gRPC's retry of
        the statuses it lists), ``load_balancing`` (``"pick_first"``, grpcio's
        default, or ``"round_robin"`` over every address ``target`` resolves to),
        ``user_agent`` (put before grpcio's own in the ``user-agent`` header), and
        ``options``: raw grpcio channel arguments, ``[(name, value), ...]``,
        applied last so that each replaces the library's value of that name.
        """
        # Refuse bad settings before a channel exists to leak.
        check_metadata(metadata)
        check_max_calls_in_flight(max_calls_in_flight)
        check_interceptors(interceptors, cls._asynchronous, cls.__name__)
        channel_args = channel_options(
            max_send_message_bytes=max_send_message_bytes,
            max_receive_message_bytes=max_receive_message_bytes,
            keepalive=keepalive,
            retry=retry,
            load_balancing=load_balancing,
            user_agent=user_agent,
            options=options,
        )
        channel = (
            cls._secure_channel(target, credentials, options=channel_args)
            if credentials is not None
            else cls._insecure_channel(target, options=channel_args)
        )
        client = cls(
            channel,
            timeout=timeout,
            metadata=metadata,
            owns_channel=True,
            attachments=attachments,
            wait_for_ready=wait_for_ready,
            coalesce=coalesce,
            wire=wire,
            compression=compression,
            max_calls_in_flight=max_calls_in_flight,
            interceptors=interceptors,
        )
        client._target = target
        # A batch never exceeds the limits this client's channel was given.
        # (``options`` may have replaced them.)
        limits = dict(channel_args)
        client._batches = (
            _batches.announcement(_batches.fitting(limits["grpc.max_receive_message_length"])),
        )
        client._send_limit = _batches.fitting(limits["grpc.max_send_message_length"])
        return client

    def _client_call(
        self, method: Method[Any, Any], timeout: float | None, metadata: Metadata | None
    ) -> ClientCall:
        """What the interceptors see of a call, with the client's defaults filled in."""
        chosen = self.metadata if metadata is None else check_metadata(metadata)
        return ClientCall(
            method, self._target, chosen or (), self.timeout if timeout is None else timeout
        )

    def _multicallable(self, method: Method[Any, Any]) -> Any:
        found = self._callables.get(method.path)
        if found is None:
            streams = method.cardinality
            kind = (
                f"{'stream' if streams.client_streaming else 'unary'}_"
                f"{'stream' if streams.server_streaming else 'unary'}"
            )
            factory = getattr(self.channel, kind)
            found = self._callables[method.path] = factory(
                method.path, **self._multicallable_kwargs
            )
        return found

    def _response_stream(
        self,
        stream_type: type[StreamT],
        method: Method[Any, Any],
        argument: Any,
        options: dict[str, Any],
        requests: RequestStream | None,
    ) -> StreamT:
        """Start a server-streaming call and wrap it in ``stream_type`` with what it learns.

        A unary request is started again while the server refuses its stream.
        """
        multicallable = self._multicallable(method)

        def invoke(argument: Any, **options: Any) -> Any:
            return self._as_call(multicallable(argument, **options))

        stream = stream_type(
            invoke(argument, **options),
            method,
            self._batches_read(),
            frames=self._reads_frames(method),
            in_band=self._in_band(method),
        )
        stream._sending = requests
        served = _deadlines.caller()
        if served is not None and self._cancelled_by_caller:
            served.cancel_with(stream._call)
        if requests is None:
            stream._retry = RefusalRetry(options["timeout"])
            stream._again = lambda left: invoke(argument, **{**options, "timeout": left})
        if self._learns(method):
            stream._on_end = self._learn
        if self._learns_batches(method):
            stream._on_initial = self._learn_batches
        return stream

    @staticmethod
    def _as_call(started: Any) -> Any:
        """What grpcio started, as a call the streams can read (see :class:`Client`)."""
        return started

    def _options(
        self,
        method: Method[Any, Any],
        timeout: float | None,
        metadata: Metadata | None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> dict[str, Any]:
        chosen = self.metadata if metadata is None else check_metadata(metadata)
        protobuf = self._protobuf(method)
        if method.cardinality.client_streaming and method.protobuf_codecs() is not None:
            # A unary request's first byte tells its wire; a stream of requests
            # may be empty or answered before it starts, so its wire is
            # announced (an entry costs ~3% of a small unary call).
            wire = _wires.PROTOBUF if protobuf else _wires.JSON
            chosen = (*(chosen or ()), _wires.announcement(wire))
        if not protobuf and self.attachments and _attachments.negotiates(method):
            chosen = (*(chosen or ()), _attachments.ANNOUNCEMENT)
        if (
            self.coalesce
            and method.cardinality is not Cardinality.UNARY_UNARY
            and not self._in_band(method)
        ):
            chosen = (*(chosen or ()), *self._batches)
        own = self.timeout if timeout is None else timeout
        # Inside a handler a call ends no later than the call being served.
        served = _deadlines.caller()
        options = {
            "timeout": own if served is None else served.timeout(own),
            "metadata": chosen,
            "wait_for_ready": self.wait_for_ready if wait_for_ready is None else wait_for_ready,
        }
        compress = self.compression if compression is None else compression_of(compression)
        if compress is not None:
            options["compression"] = compress
        return options

    def _protobuf(self, method: Method[Any, Any]) -> bool:
        """Whether calls of ``method`` speak protobuf (methods without numbers speak JSON)."""
        return self.wire == _wires.PROTOBUF and method.protobuf_codecs() is not None

    def _reads_frames(self, method: Method[Any, Any]) -> bool:
        """Whether this call announced that it reads frames (and so accepts them back)."""
        return self.attachments and _attachments.negotiates(method) and not self._protobuf(method)

    def _learns(self, method: Method[Any, Any]) -> bool:
        """Whether this call should look for the server's announcement of frames."""
        return not self._peer_reads_frames and self._reads_frames(method)

    def _learn(self, trailing_metadata: MetadataTuple) -> None:
        self._peer_reads_frames = _attachments.announced(trailing_metadata)

    def _in_band(self, method: Method[Any, Any]) -> bool:
        """Whether a server stream says it reads batches by its request, not by metadata.

        Once a server has said it reads batches, a server stream's request goes
        as a batch of one: that says it too, without metadata on every call
        (grpcio's metadata costs more than a short stream's messages). Only
        for a client that reads batches of the full size.
        """
        return (
            self._peer_batch_limit > 0
            and method.cardinality is Cardinality.UNARY_STREAM
            and self.coalesce
            and self._batches[0][1] == str(_batches.CEILING)
        )

    def _encode_request(self, method: Method[Any, Any], request: Any) -> bytes:
        """The one request of a call, as a batch of one when it says so in band."""
        data: bytes = self._request_encoder(method)(request)
        return _batches.pack((data,)) if self._in_band(method) else data

    def _learns_batches(self, method: Method[Any, Any]) -> bool:
        """Whether this streaming call should look for the server's announcement of batches."""
        return self.coalesce and not self._in_band(method)

    def _batches_read(self) -> int:
        """How large a batch this client's streams announce they read (0: none)."""
        return int(self._batches[0][1]) if self.coalesce else 0

    def _request_batch_limit(self) -> int:
        """How large a batch of requests may be: 0 until a server has announced it reads them."""
        return min(self._peer_batch_limit, self._send_limit) if self.coalesce else 0

    def _learn_batches(self, initial_metadata: Any) -> int:
        """Note what the server of a call streaming requests announced; its batch limit."""
        self._peer_batch_limit = _batches.batch_limit(initial_metadata)
        return self._request_batch_limit()

    def _send_encoder(self, method: Method[Any, Any]) -> Any:
        """The encoder of requests sent one by one (open streams): the call's wire, no frames."""
        codecs = method.protobuf_codecs() if self._protobuf(method) else None
        return codecs[0].encode if codecs is not None else method.request_codec.encode

    def _request_encoder(self, method: Method[Any, Any]) -> Any:
        codecs = method.protobuf_codecs() if self.wire == _wires.PROTOBUF else None
        if codecs is not None:
            return codecs[0].encode
        codec = method.request_codec
        return codec.encode_framed if self._peer_reads_frames else codec.encode
