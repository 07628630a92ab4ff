"""Probes: the only code that reads the system.

Each probe looks at one part of the machine or the target environment and returns facts, or
records "unknown, because …" instead of raising. Nothing outside this package (and
``tffix.effects``, which writes) touches the system.

- ``target``: which environment is inspected, asked through its own interpreter.
- ``packages``: distributions in the target, owners of ``tensorflow/``, ``nvidia/*/lib``.
- ``gpu``: the NVIDIA driver and GPUs through NVML (the only NVML user), ``/proc``, ``/dev``.
- ``env``: the variables that matter, the activated environment, activate-script settings.
- ``host``: OS, architecture, WSL2, container, libc, distribution, shell, scheduler.
- ``elf`` and ``loader``: which file the dynamic loader picks for each CUDA soname, for
  TensorFlow, proven by loading it in a child of the target interpreter.
- ``tensorflow``: TensorFlow itself in a fresh, timed child; the re-verification snippet.

``tffix.collect.collect_snapshot`` runs them (concurrently) and assembles a ``Snapshot``.
"""
