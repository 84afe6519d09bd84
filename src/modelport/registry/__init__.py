"""Registry: models, numbered versions, aliases, lifecycle stages, preparation of new versions."""

from modelport.registry.address import ModelAddress
from modelport.registry.preparation import PreparedModel, prepare_file, prepare_object
from modelport.registry.records import ModelRecord, Stage, VersionRecord
from modelport.registry.registry import Registry, warm_up

__all__ = [
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
