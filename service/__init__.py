"""The encounters service: `GET /users/{userIdentifier}/encounters`.

The app factory is `service.app.create_app`; `wsgi.py` builds the production app with it.
"""
