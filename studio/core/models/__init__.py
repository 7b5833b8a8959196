"""The networks: one file per architecture (its settings are in ``studio.core.architectures``), built by name in ``registry``."""
