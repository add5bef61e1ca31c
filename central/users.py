"""The console's users: local accounts with argon2 password hashes, roles scoped to
organisations, sessions that expire, API tokens scoped like their user, and a login rate
limit.

Roles: ``viewer`` reads; ``reviewer`` also reviews violations and edits assets and the
register; ``admin`` also manages users. Each user sees only the organisations they are
given. Sessions and tokens are random, kept only as SHA-256 hashes, and expire.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlite_utils import Database

from agent import wire
from central import audit
from central.db import immediate

ROLES = ("viewer", "reviewer", "admin")
SESSION_TTL = timedelta(hours=8)
MAX_FAILURES = 5  # per user name, and per address, within the window
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 12
_HASHER = PasswordHasher()


class UserError(ValueError):
    """A user that cannot be made, or a login refused; the message says why."""


class Throttled(UserError):
    """Too many failed logins for this name or from this address: wait."""


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: int
    username: str
    role: str
    orgs: frozenset[str]

    @property
    def can_review(self) -> bool:
        return self.role in ("reviewer", "admin")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(db: Database, username: str, password: str, *, role: str,
             orgs: list[str], by: str = "netvagt") -> User:
    if not wire.is_valid_id(username):
        raise UserError("a user name is lower-case letters, digits, '-' and '_'")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {ROLES}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    known = {r[0] for r in db.execute("SELECT id FROM orgs").fetchall()}
    missing = [o for o in orgs if o not in known]
    if missing or not orgs:
        raise UserError(f"unknown organisation(s) {missing}" if missing
                        else "a user needs at least one organisation")
    with immediate(db):
        if db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise UserError(f"user {username!r} exists")
        user_id = db.execute("INSERT INTO users (username, password_hash, role, created_at)"
                             " VALUES (?, ?, ?, ?)", [username, _HASHER.hash(password), role,
                                                      wire.utc_now()]).lastrowid
        for org in orgs:
            db.execute("INSERT INTO user_orgs (user_id, org_id) VALUES (?, ?)", [user_id, org])
            audit.record(db, actor=by, action="user.add", org=org, user=username, role=role)
    return User(id=int(user_id or 0), username=username, role=role, orgs=frozenset(orgs))


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A user as an admin sees it."""

    id: int
    username: str
    role: str
    orgs: tuple[str, ...]
    disabled: bool
    created_at: str


def accounts(db: Database, orgs: frozenset[str] | None = None) -> list[Account]:
    """The users of any of these organisations (all when None), each with only the
    organisations among these."""
    out = []
    for row in db.query("SELECT u.*, group_concat(o.org_id) AS orgs FROM users u"
                        " JOIN user_orgs o ON o.user_id = u.id GROUP BY u.id ORDER BY u.username"):
        theirs = set((row["orgs"] or "").split(","))
        shown = theirs if orgs is None else theirs & orgs
        if shown:
            out.append(Account(id=row["id"], username=row["username"], role=row["role"],
                               orgs=tuple(sorted(shown)), disabled=bool(row["disabled"]),
                               created_at=row["created_at"]))
    return out


def change_user(db: Database, user_id: int, *, admin: User, role: str | None = None,
                disabled: bool | None = None) -> None:
    """An admin changes a user's role or disables them (which ends their sessions and
    tokens): only a user all of whose organisations are the admin's, and never themself."""
    if role is not None and role not in ROLES:
        raise UserError(f"role {role!r} is not one of {ROLES}")
    if user_id == admin.id:
        raise UserError("an admin does not change their own account here")
    with immediate(db):
        theirs = {r[0] for r in db.execute("SELECT org_id FROM user_orgs WHERE user_id = ?",
                                           [user_id]).fetchall()}
        if not theirs or not theirs <= admin.orgs:
            raise UserError("no such user among your organisations")
        if role is not None:
            db.execute("UPDATE users SET role = ? WHERE id = ?", [role, user_id])
        if disabled is not None:
            db.execute("UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user_id])
            if disabled:
                db.execute("DELETE FROM web_sessions WHERE user_id = ?", [user_id])
                db.execute("DELETE FROM api_tokens WHERE user_id = ?", [user_id])
        for org in sorted(theirs):
            audit.record(db, actor=admin.username, action="user.change", org=org,
                         user=user_id, role=role, disabled=disabled)


def _user(db: Database, user_id: int) -> User | None:
    row = db.execute("SELECT id, username, role, disabled FROM users WHERE id = ?",
                     [user_id]).fetchone()
    if row is None or row[3]:
        return None
    orgs = frozenset(r[0] for r in db.execute("SELECT org_id FROM user_orgs WHERE user_id = ?",
                                              [user_id]).fetchall())
    return User(id=row[0], username=row[1], role=row[2], orgs=orgs)


def login(db: Database, username: str, password: str, *, address: str,
          now: datetime | None = None) -> str:
    """A new session's token for a right password; raises UserError or Throttled."""
    now = now or datetime.now(UTC)
    since = wire.format_ts(now - FAILURE_WINDOW)
    failures = db.execute("SELECT sum(username = ?), sum(address = ?) FROM login_failures"
                          " WHERE at > ?", [username[:64], address, since]).fetchone()
    if (failures[0] or 0) >= MAX_FAILURES or (failures[1] or 0) >= MAX_FAILURES:
        raise Throttled("too many failed logins: wait 15 minutes")
    row = db.execute("SELECT id, password_hash, disabled FROM users WHERE username = ?",
                     [username]).fetchone()
    try:
        if row is None or row[2]:
            _HASHER.hash(password)  # as long as a real check: no user-name oracle by time
            raise VerifyMismatchError
        _HASHER.verify(row[1], password)
    except (VerificationError, InvalidHashError):
        with immediate(db):
            db.execute("INSERT INTO login_failures (username, address, at) VALUES (?, ?, ?)",
                       [username[:64], address, wire.format_ts(now)])
        raise UserError("wrong user name or password") from None
    token = secrets.token_urlsafe(32)
    with immediate(db):
        if _HASHER.check_needs_rehash(row[1]):
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                       [_HASHER.hash(password), row[0]])
        db.execute("INSERT INTO web_sessions (id, user_id, created_at, expires_at) VALUES"
                   " (?, ?, ?, ?)", [_digest(token), row[0], wire.format_ts(now),
                                     wire.format_ts(now + SESSION_TTL)])
    return token


def session_user(db: Database, token: str | None, *, now: datetime | None = None
                 ) -> User | None:
    if not token:
        return None
    row = db.execute("SELECT user_id, expires_at FROM web_sessions WHERE id = ?",
                     [_digest(token)]).fetchone()
    if row is None or row[1] <= wire.format_ts(now or datetime.now(UTC)):
        return None
    return _user(db, row[0])


def logout(db: Database, token: str | None) -> None:
    if token:
        with immediate(db):
            db.execute("DELETE FROM web_sessions WHERE id = ?", [_digest(token)])


def create_token(db: Database, username: str, *, name: str, days: int = 90) -> str:
    """An API token that acts as ``username`` (its role and organisations) until it expires."""
    row = db.execute("SELECT id FROM users WHERE username = ?", [username]).fetchone()
    if row is None:
        raise UserError(f"no user {username!r}")
    token = "nvt_" + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with immediate(db):
        db.execute("INSERT INTO api_tokens (id, user_id, name, created_at, expires_at) VALUES"
                   " (?, ?, ?, ?, ?)", [_digest(token), row[0], name[:64], wire.format_ts(now),
                                        wire.format_ts(now + timedelta(days=days))])
    return token


def token_user(db: Database, token: str | None) -> User | None:
    if not token:
        return None
    row = db.execute("SELECT user_id, expires_at FROM api_tokens WHERE id = ?",
                     [_digest(token)]).fetchone()
    if row is None or row[1] <= wire.utc_now():
        return None
    return _user(db, row[0])
