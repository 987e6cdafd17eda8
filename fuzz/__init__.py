"""Fuzzing of the gateway's parsers: atheris targets, seeds and found crashes.

See ``docs/fuzzing.md``. Nothing here is imported by the gateway itself.
"""
