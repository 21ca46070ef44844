"""Dataset adapters and the sample index.

Readers for CASME II, SAMM and SMIC-HS in their real on-disk layouts and annotation formats, and a
generic manifest (CSV of frame folders or videos), one module per kind:

- ``common``       input errors (``Problem``, ``AnnotationError``, ``ReconciliationError``), ``AnnotatedClip``,
                   the excluded rows, ``read_table``
- ``coded_sheet``  the coding-sheet reader that CASME II and SAMM share (openpyxl, cell parsers, timing checks)
- ``casme2``, ``samm``, ``smic``, ``manifest``  each kind's reader, emotions, default fps and layout quirks
- ``registry``     the kinds (``DATASET_KINDS``) and ``read_dataset``, which dispatches through them
- ``index``        ``build_index``: frames attached, emotions mapped by the task (``localmer.tasks``),
                   the sample table (``SAMPLE_COLUMNS``, documented there)
"""

from .common import (
    EXCLUDED_COLUMNS,
    RECONCILIATION_COLUMNS,
    AnnotatedClip,
    AnnotationError,
    Problem,
    ReconciliationError,
    read_table,
)
from .index import SAMPLE_COLUMNS, SampleIndex, build_index, build_index_and_clips
from .manifest import read_manifest
from .registry import DATASET_KINDS, DatasetKind, get_dataset_kind, read_dataset
from .samm import SAMM_HEADER_ROW, SAMM_SHEET
from .smic import read_smic

__all__ = [
    "DATASET_KINDS",
    "EXCLUDED_COLUMNS",
    "RECONCILIATION_COLUMNS",
    "SAMM_HEADER_ROW",
    "SAMM_SHEET",
    "SAMPLE_COLUMNS",
    "AnnotatedClip",
    "AnnotationError",
    "DatasetKind",
    "Problem",
    "ReconciliationError",
    "SampleIndex",
    "build_index",
    "build_index_and_clips",
    "get_dataset_kind",
    "read_dataset",
    "read_manifest",
    "read_smic",
    "read_table",
]
