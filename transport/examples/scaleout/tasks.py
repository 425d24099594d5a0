"""The tasks waiting for each client: plain state, no gRPC."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable

from .protocol import TaskRequest

__all__ = ["TaskQueues"]


class TaskQueues:
    """A queue of tasks per client id; a taker blocks until a task comes or it must stop."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, deque[TaskRequest]] = defaultdict(deque)
        self._changed = threading.Condition()

    def put(self, client_id: str, task: TaskRequest) -> None:
        """Queue ``task`` for ``client_id``."""
        with self._changed:
            self._queues[client_id].append(task)
            self._changed.notify_all()

    def poll(self, client_id: str) -> TaskRequest | None:
        """The next task for ``client_id``, or ``None`` at once if there is none."""
        with self._changed:
            queue = self._queues.get(client_id)
            return queue.popleft() if queue else None

    def take(self, client_id: str, stopped: Callable[[], bool]) -> TaskRequest | None:
        """Wait for the next task for ``client_id``; ``None`` once ``stopped()`` is true.

        Whoever makes ``stopped()`` true must then call :meth:`wake`.
        """
        with self._changed:
            while True:
                queue = self._queues.get(client_id)
                if queue:
                    return queue.popleft()
                if stopped():
                    return None
                self._changed.wait()

    def wake(self) -> None:
        """Make every waiting taker check again whether it must stop."""
        with self._changed:
            self._changed.notify_all()

    def pending(self, client_id: str) -> int:
        """How many tasks wait for ``client_id``."""
        with self._changed:
            return len(self._queues.get(client_id, ()))
