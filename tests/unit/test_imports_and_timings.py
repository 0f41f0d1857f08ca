"""What a run imports and the timings it records: structure only; timings are measured by make bench."""

from __future__ import annotations

import torch


def test_tensor_batches_are_not_walked_again() -> None:
    from lossbench.data.sklearn import SklearnDataModule

    dm = SklearnDataModule()
    batch = (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1.0)
    assert dm.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
