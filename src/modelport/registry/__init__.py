"""Registry: models, numbered versions, aliases, stages, staging of new versions."""

from modelport.registry.address import ModelAddress
from modelport.registry.records import ModelRecord, Stage, VersionRecord
from modelport.registry.registry import Registry, warm_up
from modelport.registry.staging import StagedModel, stage_file, stage_object

__all__ = ["ModelAddress", "ModelRecord", "Registry", "Stage", "StagedModel", "VersionRecord",
           "stage_file", "stage_object", "warm_up"]
