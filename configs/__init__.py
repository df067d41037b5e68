"""The bundled Hydra config groups (installed as ``harness.configs``)."""
