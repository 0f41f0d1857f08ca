"""How a packed group's checkpoints reach the disk: :class:`CheckpointWriter` writes each replica's files
in a background thread, in order, each atomically (:class:`~lossbench.checkpointing.AtomicCheckpointIO`),
so training does not wait for the disk; :class:`CapturingCheckpointIO` takes the group Trainer's own
checkpoint (its loops' progress) instead of writing it."""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO

from lossbench.checkpointing import AtomicCheckpointIO


class CheckpointWriter:
    """Saves and removes checkpoint files in a background thread, in the order asked."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[str, Any, Path] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.work, name="packed-checkpoints", daemon=True)
        self.thread.start()

    def work(self) -> None:
        io = AtomicCheckpointIO()
        while (job := self.jobs.get()) is not None:
            action, checkpoint, path = job
            if self.error is not None:
                continue
            try:
                if action == "save":
                    io.save_checkpoint(checkpoint, path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            except BaseException as err:  # raised again by close()
                self.error = err

    def save(self, checkpoint: dict[str, Any], path: Path) -> None:
        self.jobs.put(("save", checkpoint, path))

    def remove(self, path: Path) -> None:
        self.jobs.put(("remove", None, path))

    def close(self) -> None:
        """Wait for every file asked for; raise the first error writing one."""
        self.jobs.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class CapturingCheckpointIO(CheckpointIO):
    """A ``CheckpointIO`` that keeps the checkpoint ``trainer.save_checkpoint`` hands it instead of
    writing it: the packed group's Trainer dumps its own checkpoint through Lightning's public
    ``save_checkpoint`` at each epoch's end, and each replica's checkpoint takes its loop progress from it."""

    def __init__(self) -> None:
        super().__init__()
        self.checkpoint: dict[str, Any] | None = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.checkpoint = checkpoint

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
        return TorchCheckpointIO().load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: Any) -> None:
        """Nothing is written, so nothing is removed."""

    def dump(self, trainer: Any) -> dict[str, Any]:
        """The trainer's checkpoint now (Lightning's own dump; its weights and optimizer states are
        the live tensors, not copies)."""
        trainer.save_checkpoint("packed-group.ckpt", weights_only=False)
        assert self.checkpoint is not None
        checkpoint, self.checkpoint = self.checkpoint, None
        return checkpoint
