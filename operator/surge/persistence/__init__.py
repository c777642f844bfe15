"""Decision state kept outside the process: AutoScalePolicyCheckpoint objects (see checkpoints.py)."""

from surge.persistence.checkpoints import CheckpointStore, KubeCheckpointApi
from surge.persistence.schedule import CheckpointSchedule

__all__ = ["CheckpointSchedule", "CheckpointStore", "KubeCheckpointApi"]
