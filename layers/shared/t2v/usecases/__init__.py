"""The pipeline's use cases, one module each: submit, reconcile, poll, finalize, announce.

Adapters are passed in (each module's `*Deps`); no module here does I/O of its own, so the same
code runs in Lambda, against moto + the emulator, and against the in-memory fakes of
tests/fakes.py.
"""
