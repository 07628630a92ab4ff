"""Probes: the only code that reads the system.

Each probe looks at one part of the machine or the target environment and returns facts, or
records "unknown, because …" instead of raising. Nothing outside this package (and
``tffix.effects``, which writes) touches the system.
"""
