"""The SBC's SQLite database, made the way the configuration's own db_scripts make it.

Kazoo ships its database recipe with the configuration (``db_scripts/``): ``kazoodb-sql.sh`` assembles
Kamailio's own table scripts (``/usr/share/kamailio/<engine>/*.sql``) with Kazoo's extra tables, views
and triggers (``db_kazoo-specific``); ``check-kazoodb-sql.sh`` then rebuilds the ``vw_*.sql`` views, runs
``db_init_*.sql`` and the clean-up statements of ``db_extra_check.sql`` (which also create the
``tmp_probe`` table the presence role polls). 2600Hz runs that SQL through ``KazooDB``, their SQLite
shell; here the same SQL goes to SQLite through Python's sqlite3 (the system libsqlite3). db_kazoo
stored its data in SQLite, so the SQL dialect is the one these scripts were written for.

Rows the harness delivers (media servers, trusted sources) go in with :func:`insert_dispatcher` and
:func:`replace_addresses`, the statements Kazoo's own config runs when the data comes over AMQP.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KAMAILIO_SHARE = Path("/usr/share/kamailio")
# The script sources "<DB_ENGINE>-specific" and reads "<share>/<DB_ENGINE>/*.sql": Kazoo's engine name is
# db_kazoo (its SQLite flavour), Debian ships the SQLite table scripts as db_sqlite.
SCRIPT_ENGINE = "db_kazoo"
TABLE_SCRIPTS = "db_sqlite"
_EXTRA_CHECK_STATEMENT = re.compile(r'^\s*KazooDB -db \$\{DB_CURRENT_DB\} "(.*)";?\s*$', re.M)


class DatabaseError(RuntimeError):
    """The configuration's db_scripts could not build the database."""


def database_available() -> str | None:
    if not (KAMAILIO_SHARE / TABLE_SCRIPTS / "standard-create.sql").is_file():
        return f"{KAMAILIO_SHARE / TABLE_SCRIPTS} missing (apt-get install kamailio-sqlite-modules)"
    return None


# What kazoodb-sql.sh's sql_db_prepare writes, function by function (4.3 and 5.x define them all). Not
# sql_db_prepare itself: 5.x's also runs sql_external_tables, which writes the fixed path /tmp/.extra_tables
# (shared by everyone on the machine) for the tables of $DB_SCRIPT_DIR/schema.d; those are read here
# from the configuration's own db_scripts/schema.d instead.
SCHEMA_FUNCTIONS = (
    "sql_db_pre_setup; sql_all_header; sql_header; "
    'for i in $(sql_filelist); do cat "$KAMAILIO_SHARE_DIR/$DB_ENGINE/$i"; done; '
    "sql_all_extra_tables; sql_extra_tables; sql_footer; sql_all_footer"
)


def schema_sql(db_scripts: Path) -> str:
    """The SQL ``kazoodb-sql.sh``'s ``sql_db_prepare`` writes, for SQLite."""
    with tempfile.TemporaryDirectory(prefix="kh-kazoodb-") as tmp:
        share = Path(tmp) / "share"
        share.mkdir()
        (share / SCRIPT_ENGINE).symlink_to(KAMAILIO_SHARE / TABLE_SCRIPTS)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KAMAILIO_SHARE_DIR": str(share),
            "DB_ENGINE": SCRIPT_ENGINE,
            "RESULTED_SQL": str(Path(tmp) / "unused.sql"),
        }
        # sourced, as check-kazoodb-sql.sh does; "$(dirname $0)" is "." in `sh -c`, so run in db_scripts
        done = subprocess.run(
            ["sh", "-c", f". ./kazoodb-sql.sh --source-only && {{ {SCHEMA_FUNCTIONS}; }}"],
            cwd=db_scripts,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0 or "CREATE TABLE" not in done.stdout:
            raise DatabaseError(
                f"kazoodb-sql.sh in {db_scripts} failed: {done.stderr.strip() or done.stdout[-2000:]}"
            )
        sql = done.stdout
    external = sorted((db_scripts / "schema.d").glob("*.sql"))
    if external:  # sql_external_tables, before the footer's COMMIT
        body, commit, tail = sql.rpartition("COMMIT;")
        extra = "\n".join(path.read_text(encoding="utf-8") for path in external)
        sql = f"{body}\n{extra}\n{commit}{tail}" if commit else f"{sql}\n{extra}"
    return sql


def extra_check_statements(db_scripts: Path) -> list[str]:
    """The statements of ``db_extra_check.sql`` (each a ``KazooDB -db ${DB_CURRENT_DB} "..."`` line)."""
    path = db_scripts / "db_extra_check.sql"
    if not path.is_file():
        return []
    return _EXTRA_CHECK_STATEMENT.findall(path.read_text(encoding="utf-8"))


def build_database(db_scripts: Path, path: Path) -> Path:
    """A fresh SQLite file at ``path`` from the configuration's db_scripts; returns ``path``."""
    reason = database_available()
    if reason is not None:
        raise DatabaseError(reason)
    sql = schema_sql(db_scripts)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.executescript(sql)
        for view in sorted(db_scripts.glob("vw_*.sql")):  # check-kazoodb-sql.sh rebuilds every view
            name = view.stem.split("_", 1)[1]
            connection.execute(f'drop view if exists "{name}"')
            connection.executescript(view.read_text(encoding="utf-8"))
        for init in sorted(db_scripts.glob("db_init_*.sql")):
            connection.executescript(init.read_text(encoding="utf-8"))
        for statement in extra_check_statements(db_scripts):
            connection.execute(statement)
    except sqlite3.Error as exc:
        raise DatabaseError(f"building {path} from {db_scripts}: {exc}") from exc
    finally:
        connection.close()
    return path


@dataclass(frozen=True)
class DispatcherRow:
    """One media server as the nodes role inserts it (KZQ_CHECK_MEDIA_SERVER_INSERT)."""

    setid: int
    destination: str  # sip:IP:PORT
    flags: int
    attrs: str
    description: str = "added by nodes role"


@dataclass(frozen=True)
class AddressRow:
    """One trusted source in the permissions ``address`` table (port 0: any port)."""

    ip_addr: str
    mask: int
    port: int = 0
    tag: str = ""
    grp: int = 1


def insert_dispatcher(path: Path, rows: Iterable[DispatcherRow]) -> None:
    with _connect(path) as connection:
        connection.executemany(
            "insert into dispatcher (setid, destination, flags, attrs, description) "
            "select ?, ?, ?, ?, ? where not exists (select * from dispatcher where destination = ?)",
            [(r.setid, r.destination, r.flags, r.attrs, r.description, r.destination) for r in rows],
        )


def delete_dispatcher(path: Path, destinations: Iterable[str]) -> None:
    with _connect(path) as connection:
        connection.executemany("delete from dispatcher where destination = ?", [(d,) for d in destinations])


def replace_addresses(path: Path, rows: Iterable[AddressRow]) -> None:
    """What trusted.cfg's TRUSTED_LOAD does with a query reply: empty the table, insert every row."""
    with _connect(path) as connection:
        connection.execute("delete from address")
        connection.executemany(
            "insert into address (grp, ip_addr, mask, port, tag) values (?, ?, ?, ?, ?)",
            [(r.grp, r.ip_addr, r.mask, r.port, r.tag) for r in rows],
        )


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """One transaction on the database (committed at the end of the block), then closed."""
    if not path.is_file():
        raise DatabaseError(f"no database at {path}")
    connection = sqlite3.connect(path, timeout=5.0)
    try:
        with connection:
            yield connection
    finally:
        connection.close()
