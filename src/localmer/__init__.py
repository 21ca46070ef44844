"""localmer: micro-expression recognition from local facial regions.

One module per stage: ``config`` (validated configuration), ``synth`` (synthetic corpus),
``datasets`` (dataset adapters and the sample index), ``cli`` (the ``localmer`` command).
"""

__version__ = "0.1.0"
