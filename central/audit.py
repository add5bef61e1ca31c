"""The audit log: who exported, edited or administered what, and when (reviews have their
own trail per violation, in ``violation_events``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from agent import wire


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    id: int
    at: str
    actor: str
    action: str  # export.register, export.assets, asset.owner, register.assess, user.add, ...
    org: str | None
    detail: dict[str, Any]


def record(db: Database, *, actor: str, action: str, org: str | None = None,
           **detail: Any) -> None:
    """One line in the log; inside the caller's transaction when it has one."""
    db.execute("INSERT INTO audit (at, actor, action, org, detail) VALUES (?, ?, ?, ?, ?)",
               [wire.utc_now(), actor[:64], action, org,
                json.dumps(detail, ensure_ascii=False, default=str)[:4000]])


def exported(db: Database, *, actor: str, what: str, orgs: Iterable[str | None],
             **detail: Any) -> None:
    """An export, one line per organisation it held, in a transaction of its own."""
    from central.db import immediate

    with immediate(db):
        for org in orgs:
            record(db, actor=actor, action=f"export.{what}", org=org, **detail)


def listed(db: Database, *, orgs: Iterable[str] | None = None, limit: int = 200
           ) -> list[Entry]:
    """The newest entries first; only these organisations' (and none without one) when
    ``orgs`` is given."""
    where, args = ("", []) if orgs is None else (
        " WHERE org IN (SELECT value FROM json_each(?))", [json.dumps(sorted(orgs))])
    return [Entry(id=r["id"], at=r["at"], actor=r["actor"], action=r["action"], org=r["org"],
                  detail=json.loads(r["detail"]))
            for r in db.query(f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?",  # noqa: S608
                              [*args, limit])]
