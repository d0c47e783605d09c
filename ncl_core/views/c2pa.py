"""Content Credentials (C2PA): the file's provenance manifest, if it carries one.

Lines, not a map: the signer, the program that wrote the manifest, the recorded actions (an
AI-generated source among them), the ingredients, and whether the manifest still matches the
file's bytes. The reading and validation are ``ncl_core.evidence.provenance``'s; ``details`` holds its
record and ``lines``, one finding each, for the metadata panel and the JSON.
"""

from __future__ import annotations

import numpy as np

from ncl_core.evidence.provenance import UNAVAILABLE, UNSUPPORTED, read_credentials
from ncl_core.views.base import Evidence, NotApplicable, ViewResult, as_evidence


def compute(source: Evidence | np.ndarray) -> ViewResult:
    ev = as_evidence(source)
    if ev.data is None:
        raise NotApplicable("no file: Content Credentials are read from the file itself")
    found = read_credentials(ev.data, ev.info.format if ev.info is not None else None)
    if found.status in (UNSUPPORTED, UNAVAILABLE):
        raise NotApplicable(found.message)
    details = {**found.record(), "lines": found.lines()}
    return ViewResult("c2pa", None, found.summary(), True, details)
