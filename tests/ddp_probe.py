"""Runs `lmbff` under torchrun and reports, per process, the size of each training shard it computed."""

import os
import sys

import lmbff.train as train

_loss = train.Trainer.loss


def loss(self, examples, encodings):
    # One write per line: under torchrun (python -u) print() writes the text and the newline separately,
    # and the two processes' writes could interleave into one line.
    sys.stdout.write(f"shard rank={os.environ.get('RANK')} size={len(examples)}\n")
    sys.stdout.flush()
    return _loss(self, examples, encodings)


train.Trainer.loss = loss

if __name__ == "__main__":
    from lmbff.cli import main

    sys.exit(main(sys.argv[1:]))
