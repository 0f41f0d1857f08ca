"""Train one configuration: ``python train.py loss=focal`` (see ``python train.py --help``)."""

from lossbench.train import cli

if __name__ == "__main__":
    cli()
