"""scripts/backup-journal and scripts/rotate-logs, on real journals and real files."""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from deploy.support import REPO
from reinforcetrade.storage import Journal
from requirements import missing

BACKUP = REPO / "scripts" / "backup-journal"
ROTATE = REPO / "scripts" / "rotate-logs"
LOGROTATE_CONF = REPO / "deploy" / "logrotate.conf"


def run(
    script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of our scripts with a clean RT_/PG environment plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RT_", "PG"))}
    return subprocess.run(  # noqa: S603 - our own scripts
        [str(script), *args],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def journal_with_a_run(url: str) -> Journal:
    """Return an open journal at `url` holding one paper run named "t"."""
    journal = Journal(url).open()
    journal.start_run("paper", name="t", symbols=["BTC/USDT"], timeframe="1h")
    return journal


def runs_in(path: Path) -> list[tuple[str, str]]:
    """Return a backup's runs, after checking it is one sound, self-contained file."""
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",), "no -wal to carry"
        rows = db.execute("SELECT name, kind FROM runs").fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


@pytest.fixture
def sqlite_journal(tmp_path: Path) -> Iterator[Path]:
    """Yield a SQLite journal file holding one run, still open (as under a running engine)."""
    path = tmp_path / "journal" / "rt-paper.db"
    journal = journal_with_a_run("sqlite:///" + str(path))
    try:
        yield path
    finally:
        journal.close()


# -- backup-journal: SQLite -------------------------------------------------------------------


def test_scripts_are_strict_executable_bash() -> None:
    for script in (BACKUP, ROTATE):
        assert os.access(script, os.X_OK), f"{script.name} must be executable"
        text = script.read_text(encoding="utf-8")
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in text


def test_shellcheck_passes() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed here")
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [shellcheck, str(BACKUP), str(ROTATE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_backup_copies_an_open_sqlite_journal(sqlite_journal: Path, tmp_path: Path) -> None:
    wal = sqlite_journal.with_name(sqlite_journal.name + "-wal")
    assert wal.stat().st_size > 0, "the run is still in the WAL: a plain file copy would miss it"
    done = run(BACKUP, "--dest", "out", "sqlite:///" + str(sqlite_journal), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    backup = tmp_path / done.stdout.strip()
    assert backup.parent == tmp_path / "out"
    assert re.fullmatch(r"rt-paper-\d{8}T\d{6}(\.\d{3})?Z\.db", backup.name)
    assert runs_in(backup) == [("t", "paper")]
    assert sorted(p.name for p in backup.parent.iterdir()) == [backup.name], "no partial file"


def test_backup_reads_the_url_from_the_environment(sqlite_journal: Path, tmp_path: Path) -> None:
    url = "sqlite:///" + os.path.relpath(sqlite_journal, tmp_path)  # relative to the folder
    done = run(BACKUP, cwd=tmp_path, env={"RT_TRADING__JOURNAL_URL": url})
    assert done.returncode == 0, done.stderr
    backup = tmp_path / done.stdout.strip()
    assert backup.parent == tmp_path / "backups", "the default destination is ./backups"
    assert runs_in(backup) == [("t", "paper")]


def test_backup_keeps_the_newest(sqlite_journal: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    other = dest / "other-20200101T000000.000Z.db"  # another journal's backup: not ours to prune
    other.write_bytes(b"")
    made = []
    for _ in range(3):
        done = run(
            BACKUP,
            "--dest",
            str(dest),
            "--keep",
            "2",
            "sqlite:///" + str(sqlite_journal),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        made.append(Path(done.stdout.strip()).name)
    assert len(set(made)) == 3
    assert sorted(p.name for p in dest.iterdir()) == sorted([other.name, *made[1:]])


def test_backup_falls_back_to_python_without_the_sqlite3_command(
    sqlite_journal: Path, tmp_path: Path
) -> None:
    tools = tmp_path / "bin"  # a PATH with what the script needs, but no sqlite3
    tools.mkdir()
    for tool in ("bash", "date", "find", "sort", "tail", "mkdir", "basename", "mv", "rm", "sleep"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    (tools / "python3").symlink_to(sys.executable)
    done = run(
        BACKUP,
        "--dest",
        "out",
        "sqlite:///" + str(sqlite_journal),
        cwd=tmp_path,
        env={"PATH": str(tools)},
    )
    assert done.returncode == 0, done.stderr
    assert runs_in(tmp_path / done.stdout.strip()) == [("t", "paper")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://host/journal"], "unsupported journal URL scheme 'ftp'"),
        (["mysql://rt:hunter2@db/rt"], "unsupported journal URL scheme 'mysql'"),
        (["sqlite:///no/such/journal.db"], "journal file not found: no/such/journal.db"),
        (["sqlite:///:memory:"], "in-memory SQLite journal"),
        (["journal.db"], "not a journal URL"),
        ([], "no journal URL"),
        (["--keep", "0", "sqlite:///x.db"], "--keep takes a whole number"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["sqlite:///a.db", "sqlite:///b.db"], "give one journal URL"),
    ],
)
def test_backup_refuses_bad_input(args: list[str], message: str, tmp_path: Path) -> None:
    done = run(BACKUP, "--dest", "out", *args, cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr
    assert done.stdout == ""
    assert "hunter2" not in done.stderr, "a URL's password is never printed"
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


# -- backup-journal: PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def postgres_journal(postgres_url: str) -> Iterator[str]:
    """Yield the URL of a journal with one run, in a fresh database dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"rt_backup_test_{secrets.token_hex(6)}"
    admin = make_url(postgres_url).set(drivername="postgresql")
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        journal_with_a_run(url).close()
        yield url
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_backup_dumps_a_postgresql_journal(postgres_journal: str, tmp_path: Path) -> None:
    pg_restore = shutil.which("pg_restore")
    if shutil.which("pg_dump") is None or pg_restore is None:
        missing("pg_dump and pg_restore (the PostgreSQL client) are not installed")
    assert "+psycopg" in postgres_journal, "SQLAlchemy's spelling, as in the settings"
    done = run(BACKUP, "--dest", "out", postgres_journal, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    dump = tmp_path / done.stdout.strip()
    database = make_url(postgres_journal).database
    assert re.fullmatch(rf"{database}-\d{{8}}T\d{{6}}(\.\d{{3}})?Z\.dump", dump.name)
    listing = subprocess.run(  # noqa: S603 - the dump we just made
        [pg_restore, "--list", str(dump)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"TABLE public runs\b", listing)
    assert re.search(r"TABLE DATA public runs\b", listing)
    assert sorted(p.name for p in dump.parent.iterdir()) == [dump.name]


def fake_pg_dump(folder: Path) -> Path:
    """Write a pg_dump stand-in that records its arguments and PGPASSWORD (auth is untestable
    against a trust-authenticated server), and writes the file it is asked for."""
    folder.mkdir()
    record = folder / "called"
    script = folder / "pg_dump"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$@" "PGPASSWORD=${{PGPASSWORD:-}}" > "{record}"\n'
        'for a in "$@"; do case $a in --file=*) echo dump > "${a#--file=}" ;; esac; done\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return record


@pytest.mark.parametrize(
    ("env", "password"),
    [
        ({"RT_STORAGE__PASSWORD": "from-settings"}, "from-settings"),
        ({"RT_STORAGE__PASSWORD": "from-settings", "PGPASSWORD": "from-libpq"}, "from-libpq"),
    ],
)
def test_backup_hands_pg_dump_a_libpq_url_and_the_password(
    env: dict[str, str], password: str, tmp_path: Path
) -> None:
    record = fake_pg_dump(tmp_path / "bin")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    url = "postgresql+psycopg://rt@db.internal:5432/rt?sslmode=require"
    done = run(BACKUP, "--dest", "out", url, cwd=tmp_path, env=env | {"PATH": path})
    assert done.returncode == 0, done.stderr
    called = record.read_text(encoding="utf-8").splitlines()
    assert "--format=custom" in called
    assert "--dbname=postgresql://rt@db.internal:5432/rt?sslmode=require" in called
    assert f"PGPASSWORD={password}" in called
    assert Path(done.stdout.strip()).name.startswith("rt-")
    assert password not in done.stdout + done.stderr


# -- rotate-logs ------------------------------------------------------------------------------


def write(path: Path, text: str, size: int = 2000) -> None:
    path.write_text(text + "\n" + "x" * size + "\n", encoding="utf-8")


def gz_text(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read()


def test_rotate_moves_a_big_log_and_truncates_it(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "engine.log", "first")
    (logs / "api.log").write_text("small\n", encoding="utf-8")
    (logs / "notes.txt").write_text("y" * 5000, encoding="utf-8")
    done = run(ROTATE, "--max-size", "1K", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["./logs/engine.log"]
    assert (logs / "engine.log").stat().st_size == 0
    assert (logs / "engine.log.1").read_text(encoding="utf-8").startswith("first\n")
    assert (logs / "api.log").read_text(encoding="utf-8") == "small\n"
    assert sorted(p.name for p in logs.iterdir()) == [
        "api.log",
        "engine.log",
        "engine.log.1",
        "notes.txt",
    ]


def test_rotate_compresses_older_copies_and_keeps_n(tmp_path: Path) -> None:
    logs = tmp_path / "var"
    logs.mkdir()
    for round_ in range(1, 6):
        write(logs / "engine.log", f"round {round_}")
        done = run(ROTATE, "--dir", str(logs), "--max-size", "1000", "--keep", "3", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in logs.iterdir()) == [
        "engine.log",
        "engine.log.1",
        "engine.log.2.gz",
        "engine.log.3.gz",
    ]
    assert (logs / "engine.log.1").read_text(encoding="utf-8").startswith("round 5\n")
    assert gz_text(logs / "engine.log.2.gz").startswith("round 4\n")
    assert gz_text(logs / "engine.log.3.gz").startswith("round 3\n")


def test_rotate_lets_an_appending_writer_go_on(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with (logs / "engine.log").open("a", encoding="utf-8") as writer:
        writer.write("old\n" + "x" * 2000 + "\n")
        writer.flush()
        assert run(ROTATE, "--max-size", "1K", cwd=tmp_path).returncode == 0
        writer.write("new\n")
    assert (logs / "engine.log").read_text(encoding="utf-8") == "new\n"
    assert (logs / "engine.log.1").read_text(encoding="utf-8").startswith("old\n")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--max-size", "10Q"], 2, "--max-size takes a size"),
        (["--keep", "none"], 2, "--keep takes a whole number"),
        (["--dir", "no-such-folder"], 1, "no log folder 'no-such-folder'"),
        (["--verbose"], 2, "unknown argument '--verbose'"),
    ],
)
def test_rotate_refuses_bad_input(
    args: list[str], status: int, message: str, tmp_path: Path
) -> None:
    (tmp_path / "logs").mkdir()
    done = run(ROTATE, *args, cwd=tmp_path)
    assert done.returncode == status
    assert message in done.stderr


def test_rotate_matches_the_logrotate_example(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
    if logrotate is None:
        pytest.skip("logrotate is not installed here: deploy/logrotate.conf is not exercised")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    conf = LOGROTATE_CONF.read_text(encoding="utf-8")
    assert "/opt/reinforcetrade/logs/*.log" in conf
    assert "size 10M" in conf
    assert "rotate 7" in conf
    conf = conf.replace("/opt/reinforcetrade/logs", str(theirs)).replace("size 10M", "size 1k")
    conf = re.sub(r"^\s*su .*$", "", conf, flags=re.MULTILINE)  # needs root and the user rt
    (tmp_path / "logrotate.conf").write_text(conf, encoding="utf-8")
    for round_ in range(1, 10):
        for folder in (ours, theirs):
            write(folder / "engine.log", f"round {round_}")
        assert run(ROTATE, "--dir", str(ours), "--max-size", "1K", cwd=tmp_path).returncode == 0
        done = subprocess.run(  # noqa: S603 - the system's logrotate on our example
            [logrotate, "--state", str(tmp_path / "state"), str(tmp_path / "logrotate.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in ours.iterdir())
    assert names == sorted(p.name for p in theirs.iterdir())
    assert len(names) == 1 + 7
    for name in names:
        read = gz_text if name.endswith(".gz") else lambda p: p.read_text(encoding="utf-8")
        assert read(ours / name) == read(theirs / name), name
