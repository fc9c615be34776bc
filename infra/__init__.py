"""Banditore's AWS infrastructure: a CDK v2 app around the Chalice construct, one construct per concern.

`resources.py` holds the plain resource definitions shared with the local stack; `python infra/app.py`
synthesises offline.
"""
