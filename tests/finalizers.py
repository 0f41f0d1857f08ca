"""Objects whose finalizer runs code Python cannot raise from: an exception raised in ``__del__`` (or any
garbage-collection or weakref callback) is passed to ``sys.unraisablehook`` and the program goes on."""

from __future__ import annotations

import os
import signal


class SignalledInFinalizer:
    """Sends this process SIGTERM from its finalizer and waits for the handler to run there (at once when
    it is collected: ``SignalledInFinalizer()`` as a statement)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.01)


class FailingFinalizer:
    """A finalizer with an error of its own, which must still reach ``sys.unraisablehook``."""

    def __del__(self) -> None:
        raise ValueError("a finalizer's own error")
