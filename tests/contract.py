"""The container contract's environment as the README, docs/participant-guide.md and DESIGN.md list
it, written out for digits' defaults (seed 42; 2 GiB per phase; train 600 s, infer 300 s), never
computed by the code under test."""

from __future__ import annotations

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def documented_environment(train_cpus: str = "1", infer_cpus: str = "1") -> dict[str, dict[str, str]]:
    """phase -> the variables the harness sets, for a CPU phase with these CPU limits."""
    return {
        phase: {
            "HARNESS_PHASE": phase,
            "HARNESS_SEED": "42",
            "HARNESS_TIME_LIMIT_S": seconds,
            "HARNESS_CPUS": cpus,
            "HARNESS_MEMORY_BYTES": "2147483648",
            "HOME": "/tmp",
            **dict.fromkeys(THREAD_VARIABLES, cpus),
            "NVIDIA_VISIBLE_DEVICES": "void",  # a CPU phase
            # the NVIDIA toolkit's variables, over whatever an image's ENV sets (docs/gpu.md)
            "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
            "NVIDIA_MOFED": "disabled",
            "NVIDIA_GDS": "disabled",
            "NVIDIA_GDRCOPY": "disabled",
            "NVIDIA_NVSWITCH": "disabled",
            "NVIDIA_IMEX_CHANNELS": "void",
            "NVIDIA_MIG_CONFIG_DEVICES": "",
            "NVIDIA_MIG_MONITOR_DEVICES": "",
            "LD_PRELOAD": "",
            "LD_AUDIT": "",
        }
        for phase, seconds, cpus in (("train", "600", train_cpus), ("infer", "300", infer_cpus))
    }
