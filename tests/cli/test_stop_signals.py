"""A serving program hears SIGTERM whichever of its threads the kernel gives it to."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

from transport._signals import StopSignals

# The main thread blocks SIGTERM, so the kernel must give it to the other
# thread, as it may give it to one of grpc core's. threading.Event().wait()
# in the main thread would sleep on; StopSignals wakes.
_DEAF_MAIN_THREAD = textwrap.dedent(
    """
    import signal, threading
    from transport._signals import StopSignals

    other = threading.Thread(target=threading.Event().wait, args=(60,), daemon=True)
    other.start()  # before the mask: the thread keeps SIGTERM unblocked
    with StopSignals() as stop:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        print("waiting", flush=True)
        stop.wait()
        print("stopped", flush=True)
    """
)


def test_a_signal_taken_by_another_thread_ends_the_wait() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _DEAF_MAIN_THREAD], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "waiting\n"
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
            assert child.stdout.read() == "stopped\n"
        finally:
            child.kill()


def test_set_from_another_thread_ends_the_wait_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGTERM) is not before
        threading.Timer(0.01, stop.set).start()
        stop.wait()
        assert stop.is_set()
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.set_wakeup_fd(-1) == -1  # and no wakeup fd is left behind


def test_sigint_to_this_process_ends_the_wait_and_the_handler_before_comes_back() -> None:
    # The handler before is set here, not assumed to be Python's KeyboardInterrupt: a
    # process started in the background by a non-interactive shell (`pytest &`, as in
    # a loop running test files side by side) inherits SIGINT ignored, and Python then
    # keeps it ignored. Expecting KeyboardInterrupt made this test fail in such runs.
    interrupted: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, _: interrupted.append(signum))
    try:
        with StopSignals() as stop:
            signal.raise_signal(signal.SIGINT)
            stop.wait()
            assert stop.is_set()
        assert interrupted == []  # StopSignals took it
        signal.raise_signal(signal.SIGINT)  # handled before raise_signal returns
        assert interrupted == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigint_ends_the_wait_where_it_was_ignored_and_is_ignored_again_after() -> None:
    # What `python -m transport run ... &` in a shell script has: SIGINT ignored.
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals() as stop:
            signal.raise_signal(signal.SIGINT)
            stop.wait()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: nothing happens
    finally:
        signal.signal(signal.SIGINT, before)
