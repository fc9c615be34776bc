"""Banditore runtime: everything the Lambda functions run. Only this package, app.py and
requirements.txt are packaged by Chalice; dev-only code lives in devtools/."""
