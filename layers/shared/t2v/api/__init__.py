"""The REST API's edge: the read side in front of the API's use cases (`t2v.usecases.videos`).

`edge` calls a use case per route and builds what it answers from the records it returns (`views`);
`checks` checks HTTP input, `errors` maps typed errors to HTTP answers, `routes` documents each route.
The handler is functions/api/app.py.
"""
