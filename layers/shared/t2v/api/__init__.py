"""The REST API's edge: what it answers (`views`) and the checks on HTTP input (`checks`).

Its use cases live in `t2v.usecases.videos`; the handler is functions/api/app.py.
"""
