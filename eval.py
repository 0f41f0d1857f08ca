"""Test a checkpoint with its run's config: ``python eval.py ckpt_path=<run dir>/checkpoints/<file>``."""

from lossbench.evaluate import main

if __name__ == "__main__":
    main()
