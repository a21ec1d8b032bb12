"""`t2v console`: a local web app to submit, watch, play and cancel videos (see app.py)."""
