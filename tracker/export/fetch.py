"""Run SELECTs and get their rows as pyarrow Tables, fast on both databases.

Exports read millions of rows, so they skip the ORM and SQLAlchemy's per-row type processing.

- PostgreSQL: each read runs on its own ADBC connection (Apache Arrow's libpq driver), which
  streams `COPY ... (FORMAT binary)` straight into Arrow arrays in C++ without the GIL, so
  several reads and the Python work beside them share the cores. Every such connection imports
  the export transaction's snapshot (`pg_export_snapshot`), so all reads see exactly the same
  rows even while the worker keeps writing. psycopg's own COPY hands Python one row at a time,
  which cost more than the database itself at a million patients.
- SQLite: the DB-API cursor's tuples go straight into pyarrow arrays, one read after another.

Columns come back in the types the caller names. Dates and instants are selected with the
helpers below (`day_of`, `micros_of`) and arrive as whole days or microseconds since
1970-01-01 UTC, so no Python datetime objects are made per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

Schema = Mapping[str, pa.DataType]


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def micros_of(conn: Connection, column: str) -> str:
    """SQL for a UTC instant column that `fetch` turns into microseconds since the epoch."""
    if is_postgres(conn):
        return column  # binary COPY carries the instant as microseconds already
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC); the fraction may be absent.
    return (
        f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000 "
        f"+ CAST(substr({column} || '.000000', 21, 6) AS INTEGER))"
    )


def day_of(conn: Connection, column: str) -> str:
    """SQL for a DATE column that `fetch` turns into days since 1970-01-01."""
    if is_postgres(conn):
        return column
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def _conform(table: pa.Table, schema: Schema) -> pa.Table:
    """Name the columns as `schema` does and give them its types (instants -> microseconds,
    dates -> days, booleans -> 0/1 where an integer is asked for)."""
    columns = []
    for column, wanted in zip(table.columns, schema.values(), strict=True):
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        elif pa.types.is_date32(column.type):
            column = column.cast(pa.int32())
        elif pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        if column.type != wanted:
            column = pc.cast(column, wanted)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=list(schema))


def _sqlite_rows(conn: Connection, sql: str, schema: Schema) -> pa.Table:
    names = list(schema)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if not rows:
        return pa.table({n: pa.array([], type=schema[n]) for n in names})
    columns = list(zip(*rows, strict=True))
    return pa.table({n: pa.array(columns[i], type=schema[n]) for i, n in enumerate(names)})


class SnapshotReads:
    """Reads that share `conn`'s view of the database; use as a context manager.

    On PostgreSQL `submit` starts each read at once on its own ADBC connection in a thread
    (all on the snapshot of `conn`'s transaction, which must stay open until they finish);
    on SQLite it runs the read inline on `conn` and hands back a finished future.
    """

    def __init__(self, conn: Connection, threads: int = 4) -> None:
        self.conn = conn
        self.threads = threads
        self.pool: ThreadPoolExecutor | None = None
        self.snapshot = ""
        self.search_path = ""
        self.uri = ""

    def __enter__(self) -> SnapshotReads:
        if is_postgres(self.conn):
            self.snapshot = self.conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            # The schema the caller's connection sees, however it was set (URL options,
            # PGOPTIONS, role defaults), so the side connections read the same tables.
            self.search_path = self.conn.execute(text("SHOW search_path")).scalar_one()
            url = self.conn.engine.url.set(drivername="postgresql")
            self.uri = url.render_as_string(hide_password=False)
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="export-read")
        return self

    def submit(self, sql: str, schema: Schema) -> Future[pa.Table]:
        if self.pool is None:
            return _run_now(lambda: _conform(_sqlite_rows(self.conn, sql, schema), schema))
        return self.pool.submit(lambda: _conform(self._read(sql), schema))

    def _read(self, sql: str) -> pa.Table:
        import adbc_driver_postgresql.dbapi as adbc_pg

        with adbc_pg.connect(self.uri, autocommit=True) as side, side.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT {_literal(self.snapshot)}")
            cursor.execute(f"SELECT set_config('search_path', {_literal(self.search_path)}, true)")
            cursor.fetchall()
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
            cursor.execute("COMMIT")  # read-only: nothing is written
            return table

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=kind is not None)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _run_now(read: Callable[[], Any]) -> Future[Any]:
    done: Future[Any] = Future()
    try:
        done.set_result(read())
    except Exception as error:  # noqa: BLE001 - re-raised by .result()
        done.set_exception(error)
    return done
