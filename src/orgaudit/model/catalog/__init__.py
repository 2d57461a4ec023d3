"""The permission catalog: what roles grant and what keys need, as labelled data.

The catalog is a TOML file shipped in the package (``default.toml``) and replaceable
with ``--catalog FILE``. Code never branches on a role or a scope name; it asks the
catalog. Every entry carries its :class:`Evidence`, which findings and explanations show.


The package: ``rules`` (the catalog's vocabulary and the :class:`Catalog`), ``load``
(reading and checking a catalog file) and ``default.toml``. What the rest of orgaudit
uses is named here.
"""

from orgaudit.model.catalog.load import load_catalog
from orgaudit.model.catalog.rules import (
    CONTESTED,
    EVIDENCE_DOC,
    EVIDENCE_LEVELS,
    ORGANIZATION,
    PROJECT,
    Area,
    Catalog,
    DashboardSetting,
    EndpointRule,
    Evidence,
    KeyPermissions,
    KnownValues,
    Preset,
    Reading,
    Requirement,
    Rule,
    ScopeTrap,
    requirement_text,
    split_endpoint,
)

__all__ = [
    "CONTESTED",
    "EVIDENCE_DOC",
    "EVIDENCE_LEVELS",
    "ORGANIZATION",
    "PROJECT",
    "Area",
    "Catalog",
    "DashboardSetting",
    "EndpointRule",
    "Evidence",
    "KeyPermissions",
    "KnownValues",
    "Preset",
    "Reading",
    "Requirement",
    "Rule",
    "ScopeTrap",
    "load_catalog",
    "requirement_text",
    "split_endpoint",
]
