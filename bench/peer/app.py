"""The peer: `GET /users/{userIdentifier}/encounters` as a Python team would write it instead.

FastAPI, asyncpg and orjson under uvicorn (uvloop, httptools): best effort and idiomatic. One
asyncpg pool per worker, statements prepared and cached by asyncpg, the service's two statements
in the same shape (the resolver's one lookup of caller and target; the list's `UNION ALL` of a
student's two range scans, its status from the kept count and the target's active bookings), the
same rules (HS256 tokens with the same settings and checks, identifier spellings, argument rules,
window defaults and limits, policy, media types) and the same answer bytes: body, ETag,
Cache-Control, Vary, X-Request-ID. Errors are problem details too; only 200s are held byte for
byte (`bench.peer.run.compare`).

Benchmark only: its own requirements (bench/peer/requirements.txt) and venv (.venv-peer), started
by `bench.peer.run`; the service never imports it. Settings are the service's own variables
(DATABASE_URL, JWT_*, ENCOUNTER_*).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import asyncpg
import jwt
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

ENV = os.environ
SECRET = ENV["JWT_SECRET"].encode()
ALGORITHMS = [a.strip() for a in ENV.get("JWT_ALGORITHMS", "HS256").split(",") if a.strip()]
ISSUER = ENV.get("JWT_ISSUER") or None
AUDIENCE = ENV.get("JWT_AUDIENCE") or None
TOKEN_TYPE = ENV.get("JWT_TOKEN_TYPE") or None
LEEWAY = int(ENV.get("JWT_LEEWAY_SECONDS") or 30)
SUBJECT_CLAIM = ENV.get("JWT_SUBJECT_CLAIM") or "sub"
ROLE_CLAIM = ENV.get("JWT_ROLE_CLAIM") or "role"
SUBJECT_KINDS = {k.strip() for k in (ENV.get("JWT_SUBJECT_KINDS") or "id,email,ref").split(",")}
KINDS = {"id": "id", "email_key": "email", "reference_key": "ref"}
WINDOW = timedelta(days=int(ENV.get("ENCOUNTER_WINDOW_DAYS") or 14))
MAX_WINDOW = timedelta(days=int(ENV.get("ENCOUNTER_MAX_WINDOW_DAYS") or 31))
JSON_TYPES = ("application/json", "text/json")
ROLES = {"student": "Student", "staffmember": "StaffMember"}
MINUTE = timedelta(minutes=1)
_HEX = "[0-9A-Fa-f]"
_D = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
GUID = re.compile(rf"{_D}|{_HEX}{{32}}|\{{{_D}\}}|\({_D}\)")
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DIGITS = re.compile(r"[0-9]+")
ARGUMENTS = ("from", "to", "unit", "online")

RESOLVE = """SELECT u.id, u.email_key, u.reference_key, u.role::text, u.center_id,
  u.current_unit, sc.center_id FROM users u LEFT JOIN staff_centers sc ON sc.user_id = u.id
WHERE """
BRANCH = """SELECT e.unit_number, e.id, e.starts_at, e.ends_at,
  CASE WHEN e.id IN (SELECT b.encounter_id FROM bookings b
                     WHERE b.user_id = :user AND NOT b.cancelled) THEN 'Booked'
       WHEN e.active_bookings >= e.capacity THEN 'Full' ELSE 'Available' END AS status,
  e.is_online, c.id AS center_id, c.name, c.reference_id
FROM encounters e JOIN centers c ON c.id = e.center_id
WHERE {} AND NOT e.cancelled AND e.starts_at >= :starts AND e.starts_at < :ends"""
IN_CENTERS, OF_UNIT = "e.center_id = ANY(:centers)", "e.unit_number = :unit"

pools: list[asyncpg.Pool] = []
statements: dict[tuple[str, ...], tuple[str, list[str]]] = {}


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """One asyncpg pool per worker, open while it serves."""
    url = re.sub(r"^postgresql\+\w+://", "postgresql://", ENV["DATABASE_URL"])
    pools.append(await asyncpg.create_pool(url, min_size=8, max_size=8))
    yield
    await pools.pop().close()


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)


class Problem(Exception):
    """An error answer (problem details)."""

    def __init__(self, status: int, detail: str, errors: Any = None, **headers: str) -> None:
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers


@app.exception_handler(Problem)
async def problem(request: Request, error: Problem) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(error.status).phrase,
        "status": error.status,
        "detail": error.detail,
    }
    if error.errors:
        body["errors"] = error.errors
    body["request_id"] = request.state.request_id
    headers = {"X-Request-ID": request.state.request_id, **error.headers}
    return Response(orjson.dumps(body), error.status, headers, "application/problem+json")


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    async with pools[0].acquire() as connection:
        await connection.fetchval("SELECT 1")
    return {"status": "ok"}


@app.get("/users/{identifier:path}/encounters")
async def list_encounters(identifier: str, request: Request) -> Response:
    offered = request.headers.get("x-request-id", "")
    request.state.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    mimetype = negotiate(request.headers.get("accept", ""))
    subject, roles = authenticate(request.headers.get("authorization"))
    target_key = parse_identifier(identifier)
    starts, ends, unit, online = arguments(request)
    caller_key = subject_key(subject)
    async with pools[0].acquire() as connection:
        caller = target = None
        if caller_key is not None:
            keys = [caller_key] if target_key is None else [caller_key, target_key]
            found = await resolve(connection, keys)
            caller, target = found[0], found[-1]
        if caller is None or caller["role"] not in {
            ROLES.get(r.lower()) for r in roles if r.isascii()
        }:
            raise Problem(403, "Only a known Student or StaffMember may call this.")
        if target is None or not (
            caller["id"] == target["id"]
            or (caller["role"] == "StaffMember" and caller["centers"] & target["centers"])
        ):
            raise Problem(404, "No user with that identifier is visible to you.")
        rows = await encounters(connection, target, starts, ends, unit, online)
    body = orjson.dumps(
        [
            {
                "UnitNumber": r[0],
                "Id": str(r[1]),
                "DateTime": r[2],
                "EndDate": r[3],
                "Duration": (r[3] - r[2]) // MINUTE,
                "Status": r[4],
                "IsOnline": r[5],
                "CenterId": str(r[6]),
                "CenterName": r[7],
                "CenterReferenceId": r[8],
            }
            for r in rows
        ]
    )
    etag = hashlib.blake2b(mimetype.encode() + b"\0" + body, digest_size=16).hexdigest()
    headers = {
        "Cache-Control": "private, no-cache",
        "ETag": f'"{etag}"',
        "Vary": "Authorization, Accept",
        "X-Request-ID": request.state.request_id,
    }
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(None, 304, headers)
    return Response(body, 200, headers, f"{mimetype}; charset=utf-8")


async def resolve(connection: Any, keys: list[tuple[str, Any]]) -> list[dict[str, Any] | None]:
    """Caller and target (or the caller alone) in one statement, as the service's resolver."""
    condition = " OR ".join(f"u.{column} = ${n}" for n, (column, _) in enumerate(keys, 1))
    users: dict[Any, dict[str, Any]] = {}
    rows = await connection.fetch(RESOLVE + condition, *(value for _, value in keys))
    for user_id, email_key, reference_key, role, center, unit, assigned in rows:
        user = users.setdefault(
            user_id,
            {
                "id": user_id,
                "email_key": email_key,
                "role": role,
                "reference_key": reference_key,
                "unit": unit,
                "centers": set(),
            },
        )
        user["centers"].update(c for c in (center, assigned) if c is not None)
    return [next((u for u in users.values() if u[column] == value), None) for column, value in keys]


async def encounters(
    connection: Any,
    target: dict[str, Any],
    starts: datetime,
    ends: datetime,
    unit: int | None,
    online: bool | None,
) -> list[Any]:
    """The list statement of the target's shape (the service's `_scopes`)."""
    centers = sorted(target["centers"])
    staff = target["role"] == "StaffMember"
    if staff:
        if not centers:
            return []
        branches = [f"{OF_UNIT} AND {IN_CENTERS}" if unit is not None else IN_CENTERS]
        if online is not None:
            branches[0] += " AND e.is_online" if online else " AND NOT e.is_online"
    else:
        unit = unit or target["unit"]
        if unit is None:
            return []
        branches = []
        if online is not True and centers:
            branches.append(f"{OF_UNIT} AND {IN_CENTERS} AND NOT e.is_online")
        if online is not False:
            branches.append(f"{OF_UNIT} AND e.is_online")
    sql, names = statement(tuple(branches))
    values = {
        "user": target["id"],
        "centers": centers,
        "unit": unit,
        "starts": starts,
        "ends": ends,
    }
    return await connection.fetch(sql, *(values[name] for name in names))


def statement(branches: tuple[str, ...]) -> tuple[str, list[str]]:
    """The SQL of these branches with `$n` parameters, and the names they stand for."""
    if branches not in statements:
        if len(branches) == 1:
            sql = BRANCH.format(branches[0]) + " ORDER BY e.starts_at, e.id"
        else:
            union = " UNION ALL ".join(BRANCH.format(branch) for branch in branches)
            sql = f"SELECT * FROM ({union}) AS u ORDER BY u.starts_at, u.id"
        names: list[str] = []
        for name in re.findall(r":(\w+)", sql):
            if name not in names:
                names.append(name)
        for n, name in enumerate(names, 1):
            sql = sql.replace(f":{name}", f"${n}")
        statements[branches] = sql, names
    return statements[branches]


def negotiate(accept: str) -> str:
    """application/json unless Accept prefers text/json; 406 when it admits neither."""
    if not accept.strip():
        return JSON_TYPES[0]
    quality = {}
    for media_type in JSON_TYPES:
        best = (-1, 0.0)
        for part in accept.split(","):
            name, *parameters = (p.strip() for p in part.split(";"))
            q = 1.0
            for parameter in parameters:
                key, _, value = parameter.partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            name = name.lower()
            rank = (
                2
                if name == media_type
                else 1
                if name == media_type.split("/")[0] + "/*"
                else 0
                if name == "*/*"
                else -1
            )
            if rank > best[0]:
                best = (rank, q)
        quality[media_type] = best[1]
    chosen = max(JSON_TYPES, key=lambda t: (quality[t], t == JSON_TYPES[0]))
    if quality[chosen] <= 0:
        raise Problem(406, "This resource is served as application/json or text/json.")
    return chosen


def authenticate(authorization: str | None) -> tuple[str, list[str]]:
    """The verified token's subject and role names (the service's rules and messages)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "A bearer token is required.", **{"WWW-Authenticate": 'Bearer realm="encounters"'}
        )
    try:
        header = jwt.get_unverified_header(token.strip())
        if header.get("alg") not in ALGORITHMS or "crit" in header:
            raise jwt.InvalidTokenError("header")
        if TOKEN_TYPE and str(header.get("typ", "")).lower().removeprefix(
            "application/"
        ) != TOKEN_TYPE.lower().removeprefix("application/"):
            raise jwt.InvalidTokenError("typ")
        claims = jwt.decode(
            token.strip(),
            SECRET,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={
                "require": ["exp"],
                "verify_aud": AUDIENCE is not None,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
        for name in ("exp", "nbf", "iat"):
            if name in claims and (
                isinstance(claims[name], bool) or not isinstance(claims[name], int | float)
            ):
                raise jwt.InvalidTokenError(name)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Problem(
            401,
            "The bearer token is not valid.",
            **{"WWW-Authenticate": 'Bearer realm="encounters", error="invalid_token"'},
        ) from None
    subject, roles = claims.get(SUBJECT_CLAIM), claims.get(ROLE_CLAIM)
    if not isinstance(subject, str) or not subject.strip():
        raise Problem(401, "The bearer token is not valid.")
    roles = [roles] if isinstance(roles, str) else roles if isinstance(roles, list) else []
    return subject, [role for role in roles if isinstance(role, str)]


def parse_identifier(raw: str) -> tuple[str, Any] | None:
    """(column, value) of a spelling (GUID, email, reference id, explicit kind:); None: `me`."""
    text = _shaped(raw.strip())
    for prefix, column in (("id:", "id"), ("email:", "email_key"), ("ref:", "reference_key")):
        if text.startswith(prefix):
            value = _shaped(text[len(prefix) :].strip())
            if column != "id":
                return column, value.lower()
            if not GUID.fullmatch(value):
                raise _invalid("an explicit 'id:' identifier must be a GUID")
            return "id", uuid.UUID(value.strip("{}()"))
    if text == "me":
        return None
    if GUID.fullmatch(text):
        return "id", uuid.UUID(text.strip("{}()"))
    local, at, domain = text.partition("@")
    if at and local and domain and "@" not in domain:
        return "email_key", text.lower()
    return "reference_key", text.lower()


def subject_key(subject: str) -> tuple[str, Any] | None:
    """The token subject's lookup; None (a 403) for `me`, a malformed one or a kind not allowed."""
    try:
        key = parse_identifier(subject)
    except Problem:
        return None
    return key if key is not None and KINDS[key[0]] in SUBJECT_KINDS else None


def _shaped(text: str) -> str:
    if not text:
        raise _invalid("the user identifier is empty")
    if len(text) > 254:
        raise _invalid("the user identifier is longer than 254 characters")
    if not text.isprintable() or "\ufffd" in text:
        raise _invalid("the user identifier contains control or unprintable characters")
    return text


def _invalid(message: str) -> Problem:
    return Problem(400, "The user identifier is malformed.", {"userIdentifier": [message]})


def arguments(request: Request) -> tuple[datetime, datetime, int | None, bool | None]:
    """from, to, unit and online, checked as the service checks them; the window made."""
    query = request.query_params
    errors: dict[str, list[str]] = {}
    for name in ARGUMENTS:
        if len(query.getlist(name)) > 1:
            errors[name] = ["Given more than once."]
    values: dict[str, Any] = {}
    for name, parse in (
        ("from", _instant),
        ("to", _instant),
        ("unit", _unit),
        ("online", _boolean),
    ):
        if name in query and name not in errors:
            try:
                values[name] = parse(query[name])
            except ValueError as error:
                errors[name] = [str(error)]
    if errors:
        raise Problem(400, "The request's parameters are invalid.", errors)
    starts = values.get("from") or datetime.now(UTC)
    try:
        ends = values.get("to") or starts + WINDOW
    except OverflowError:
        raise Problem(
            400, "The request's parameters are invalid.", {"from": ["Too far in the future."]}
        ) from None
    if starts >= ends:
        raise Problem(
            400, "The request's parameters are invalid.", {"to": ["Must be after 'from'."]}
        )
    if ends - starts > MAX_WINDOW:
        raise Problem(
            400,
            "The request's parameters are invalid.",
            {"to": [f"The window may span at most {MAX_WINDOW.days} days."]},
        )
    return starts, ends, values.get("unit"), values.get("online")


def _instant(value: str) -> datetime:
    text = value.strip()
    if DATE.fullmatch(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("A date-time needs an offset (for example +00:00 or Z).")
    return moment.astimezone(UTC)


def _unit(value: str) -> int:
    if not DIGITS.fullmatch(value.strip()) or not 1 <= int(value) <= 2**31 - 1:
        raise ValueError("Not a valid unit.")
    return int(value)


def _boolean(value: str) -> bool:
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    raise ValueError("Not a valid boolean.")


def not_modified(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/").strip('"') for t in if_none_match.split(",")]
    return "*" in tags or etag in tags
