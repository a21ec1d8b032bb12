"""The use cases, one module each: the pipeline's submit, reconcile, poll, finalize and announce, and
the REST API's videos (accept, look up, list, cancel).

Adapters are passed in (each module's `*Deps`); no module here does I/O of its own, so the same
code runs in Lambda, against moto + the emulator, and against the in-memory fakes of
tests/fakes.py.
"""
