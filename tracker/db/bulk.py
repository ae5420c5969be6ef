"""Bulk writes inside a session's transaction, fast on both databases.

PostgreSQL: ids are taken from the table's sequence up front and rows go in with COPY.
Multi-row INSERT ... RETURNING is slow there through psycopg, which parses every long
statement in Python (about 10 us per parameter); COPY streams rows in C.
SQLite: executemany (multi-row VALUES with RETURNING where ids are needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, any_, bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `= ANY(array)`, one parameter however many values."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) without reading anything back."""
    if not rows:
        return
    if is_postgres(session):
        _copy(session, table, rows)
    else:
        session.execute(insert(table), rows)


def insert_with_ids(
    session: Session, table: Table, rows: list[dict[str, Any]], key: str
) -> dict[Any, int]:
    """Insert rows and return {row[key]: new id}; `key` must be unique among the rows."""
    if not rows:
        return {}
    if is_postgres(session):
        ids = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": len(rows)},
        ).scalars()
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
        _copy(session, table, rows)
        return {row[key]: row["id"] for row in rows}
    result = session.execute(insert(table).returning(table.c.id, table.c[key]), rows)
    return {ref: new_id for new_id, ref in result}


def _copy(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    for name in columns:
        if name not in table.c:
            raise KeyError(f"{table.name} has no column {name}")
    raw = session.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
