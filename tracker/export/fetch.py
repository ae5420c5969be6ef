"""Run one SELECT and get its rows as a pyarrow Table, fast on both databases.

Exports read millions of rows, so they skip the ORM and SQLAlchemy's per-row type processing:
on PostgreSQL the rows stream out with `COPY (...) TO STDOUT` as CSV and pyarrow parses them
in C; on SQLite the DB-API cursor's tuples go straight into pyarrow arrays. Dates and instants
are selected as numbers (days and seconds since 1970-01-01 UTC) with the helpers below, so no
Python datetime objects are created per row.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def epoch_seconds(conn: Connection, column: str) -> str:
    """SQL for a UTC instant column as whole seconds since the epoch (NULL stays NULL)."""
    if is_postgres(conn):
        # date_part gives a double (exact to the microsecond at these magnitudes), several
        # times cheaper for PostgreSQL than EXTRACT's numeric over millions of rows.
        return f"CAST(FLOOR(date_part('epoch', {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def epoch_days(conn: Connection, column: str) -> str:
    """SQL for a DATE column as days since 1970-01-01."""
    if is_postgres(conn):
        return f"({column} - DATE '1970-01-01')"
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def fetch_table(conn: Connection, sql: str, schema: Mapping[str, pa.DataType]) -> pa.Table:
    """Rows of `sql` (whose columns are exactly `schema`'s names, in order) as a Table."""
    names = list(schema)
    if is_postgres(conn):
        return _fetch_copy(conn, sql, schema)
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


def _fetch_copy(conn: Connection, sql: str, schema: Mapping[str, pa.DataType]) -> pa.Table:
    buffer = io.BytesIO()
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER false)") as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pa.table({n: pa.array([], type=t) for n, t in schema.items()})
    return pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=list(schema), block_size=16 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict(schema),
            # COPY writes NULL as an empty unquoted field and '' as "": keep them apart.
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
