"""Data administration: the Flask CLI commands and what they run (migrations, imports, demo data).

Nothing here runs while a request is served.
"""
