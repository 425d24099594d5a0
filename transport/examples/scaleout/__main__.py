"""``python -m transport.examples.scaleout serve|demo``."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import islice

from transport import Binding, Client, bind

from .._cli import demo_against, parser, serve_until_signalled
from .client import download_model, upload_model
from .protocol import (
    ClientAnnounceRequest,
    ClientAvailableMessage,
    CombinerClient,
    CombinerClientUpstream,
    Heartbeat,
    LogLevel,
    MetricElem,
    ModelMetric,
    ModelService,
    ModelServiceUpstream,
    Status,
    TaskRequest,
)
from .server import CombinerServer, ModelStore


def _bindings(combiner: CombinerServer) -> list[Binding]:
    store = ModelStore()
    return [
        bind(CombinerClient, combiner),
        bind(ModelService, store),
        bind(CombinerClientUpstream, combiner),
        bind(ModelServiceUpstream, store),
    ]


def _call(address: str, tasks: int) -> None:
    now = datetime.now(timezone.utc)
    with Client.connect(address, timeout=10.0) as client:
        joined = client.call(CombinerClient.Announce, ClientAnnounceRequest(client_id="edge-1"))
        print(joined.response)
        beat = Heartbeat(client_id="edge-1", cpu_utilisation=0.25, memory_utilisation=0.5)
        print(client.call(CombinerClient.SendHeartbeat, beat).response)
        status = Status(
            client_id="edge-1", status="training", log_level=LogLevel.INFO, timestamp=now
        )
        print(client.call(CombinerClient.SendStatus, status).response)
        metric = ModelMetric(
            client_id="edge-1", metrics=[MetricElem(key="loss", value=0.1)], step=3
        )
        print(client.call(CombinerClient.SendModelMetric, metric).response)
        with client.call(
            CombinerClient.TaskStream, ClientAvailableMessage(client_id="edge-1")
        ) as stream:
            for task in islice(stream, tasks):
                print(f"task {task.type} {task.model_id}")
        model = bytes(range(256)) * 10_000
        print(upload_model(client, "model-1", model).message)
        print(f"downloaded {len(download_model(client, 'model-1'))} bytes")


def main() -> None:
    """Parse the command line and run ``serve`` or ``demo``."""
    root, _, _ = parser("Serve or call Scaleout Edge's CombinerClient and ModelService (seed 002).")
    args = root.parse_args()
    if args.command == "serve":
        serve_until_signalled(
            _bindings(CombinerServer()), args.port, wire=args.wire, compression=args.compression
        )
        return
    combiner = CombinerServer()
    tasks = 0 if args.target else 2
    for kind in ("training", "validation")[:tasks]:
        combiner.queue_task(TaskRequest(client_id="edge-1", type=kind, model_id="model-1"))
    demo_against(args.target, lambda: _bindings(combiner), lambda address: _call(address, tasks))


if __name__ == "__main__":
    main()
