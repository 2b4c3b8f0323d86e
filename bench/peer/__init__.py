"""The peer of the side-by-side benchmark: FastAPI + asyncpg + orjson (app.py), in its own venv."""
