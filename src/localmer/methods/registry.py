"""The methods by name; the config schema's ``method`` values are read from here.

A new method is one module defining a ``Method`` (``localmer.methods.method``) plus one entry in
``METHODS``; docs/extending.md lists the other files to touch. No module imports TensorFlow or
scikit-learn at import time: the schema (and so this registry) is read in every rule's environment.
"""

from __future__ import annotations

from dataclasses import asdict

from . import bi_woof, lbptop_svm, localmer, off_apexnet, ststnet
from .method import LOCALMER, Method

METHODS: dict[str, Method] = {
    module.METHOD.name: module.METHOD for module in (localmer, ststnet, off_apexnet, lbptop_svm, bi_woof)
}
# The peers: methods fitted per fold on cached per-clip inputs (localmer.methods.fold).
PEERS = tuple(name for name in METHODS if name != LOCALMER)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(map(repr, METHODS))}")
    return METHODS[name]


def published_figures(names) -> dict[str, list[dict]]:
    """Method name -> its publications' figures (``Method.published``) as plain data, for
    ``localmer.comparison`` through a workflow rule's params: the reporting environment that draws the
    table has no TensorFlow or scikit-learn to import the methods with."""
    return {name: [asdict(published) for published in get_method(name).published] for name in dict.fromkeys(names)}
