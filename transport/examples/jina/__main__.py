"""``python -m transport.examples.jina serve|demo``."""

from __future__ import annotations

import numpy as np

from transport import Client, bind

from .._cli import demo_against, parser, serve_until_signalled
from .arrays import from_numpy
from .client import JinaSession
from .protocol import DocumentProto, JinaRPC, JinaRPCUpstream
from .server import JinaServer


def _call(address: str) -> None:
    embeddings = {
        "cat": [0.9, 0.1, 0.0],
        "dog": [0.8, 0.3, 0.1],
        "car": [0.0, 0.2, 0.9],
    }
    with Client.connect(address, timeout=10.0) as client, JinaSession(client) as jina:
        docs = [
            DocumentProto(
                id=name,
                text=name,
                embedding=from_numpy(np.array(vector, dtype=np.float32), "UINT8"),
            )
            for name, vector in embeddings.items()
        ]
        jina.index(docs)
        query = DocumentProto(id="q", embedding=from_numpy(np.array([1.0, 0.2, 0.0])))
        for match in jina.search([query])[0].matches:
            assert match.score is not None
            print(f"{match.id} {match.score.op_name} {match.score.value:.3f}")
        status = jina.status()
        print(f"status {status.code.name if status else None}")


def main() -> None:
    """Parse the command line and run ``serve`` or ``demo``."""
    root, _, _ = parser("Serve or call JinaRPC (seed 004).")
    args = root.parse_args()
    if args.command == "serve":
        pod = JinaServer()
        bindings = [bind(JinaRPC, pod), bind(JinaRPCUpstream, pod)]
        serve_until_signalled(bindings, args.port, wire=args.wire, compression=args.compression)
    else:
        demo_against(args.target, lambda: [bind(JinaRPC, JinaServer())], _call)


if __name__ == "__main__":
    main()
