"""Runs `lmbff` under torchrun and reports, per process, the size of each training shard it computed."""

import os
import sys

import lmbff.train as train

_loss = train.Trainer.loss


def loss(self, examples, encodings):
    print(f"shard rank={os.environ.get('RANK')} size={len(examples)}", flush=True)
    return _loss(self, examples, encodings)


train.Trainer.loss = loss

if __name__ == "__main__":
    from lmbff.cli import main

    sys.exit(main(sys.argv[1:]))
