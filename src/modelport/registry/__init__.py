"""Registry: models, numbered versions, aliases, lifecycle stages, preparation of new versions,
and the audit log of every change."""

from modelport.registry.address import ModelAddress
from modelport.registry.audit import Actor, AuditEntry, AuditLog
from modelport.registry.preparation import PreparedModel, prepare_file, prepare_object
from modelport.registry.records import ModelRecord, Stage, VersionRecord
from modelport.registry.registry import Registry, warm_up

__all__ = [
    "Actor",
    "AuditEntry",
    "AuditLog",
    "ModelAddress",
    "ModelRecord",
    "PreparedModel",
    "Registry",
    "Stage",
    "VersionRecord",
    "prepare_file",
    "prepare_object",
    "warm_up",
]
