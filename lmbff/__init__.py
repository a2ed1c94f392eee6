"""The learning layer: data and k-shot splits, the prompt model, tuning, evaluation, the `lmbff` command.

Kept free of imports so that `lmbff --help` starts fast; import the modules you need
(`lmbff.model`, `lmbff.data`, `lmbff.train`, ...).
"""

__version__ = "0.2.0"
