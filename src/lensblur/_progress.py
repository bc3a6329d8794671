"""Progress channels: a long computation reports to whoever opened a block around it, at any call depth.

``lensblur.render.reporting`` (the layered renderer's blocks) and ``lensblur.generate.pipeline.reporting``
(denoising steps) are each one :class:`Channel`, so ``lensblur ui`` hears what ``lensblur render`` and
``lensblur generate`` show their bars with, without a callback threaded through every signature.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

Progress = Callable[[int, int], None]


class Channel:
    """One kind of progress, heard in the current context (thread or task) only."""

    def __init__(self, name: str):
        self._listener: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(name, default=None)

    def listener(self) -> Progress | None:
        """The callback to report to, or None when no block is open."""
        return self._listener.get()

    @contextlib.contextmanager
    def listening(self, progress: Progress) -> Iterator[None]:
        """Within the block, :meth:`listener` is ``progress``; inside another block of the same channel both
        callbacks are called (the inner one first)."""
        outer = self._listener.get()
        if outer is not None:
            inner = progress

            def progress(done: int, total: int) -> None:
                inner(done, total)
                outer(done, total)

        token = self._listener.set(progress)
        try:
            yield
        finally:
            self._listener.reset(token)
