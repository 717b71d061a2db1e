"""The laptop's embedded PostgreSQL (alignweb/embedded_db.py): where it listens, what counts as
running, and that its data outlives a stop."""

import os

import environ
import psycopg
import pytest

from alignweb import embedded_db


def test_its_url_is_a_unix_socket_in_the_data_directory_that_settings_read_as_postgresql(tmp_path):
    config = environ.Env.db_url_config(embedded_db.url(tmp_path))

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["HOST"]) == ("alignweb", "postgres", "")
    assert config["OPTIONS"] == {"host": str(tmp_path / "postgres"), "port": embedded_db.PORT}


def test_a_var_dir_too_long_for_a_socket_path_gets_a_short_socket_directory_of_its_own(tmp_path):
    long_var = tmp_path / ("v" * 120)
    other_long_var = tmp_path / ("w" * 120)

    directory = embedded_db.socket_dir(long_var)

    assert directory.parent.as_posix() == "/tmp" and directory.name.startswith("alignweb-pg-")
    assert len(str(directory / ".s.PGSQL.5432")) <= embedded_db.SOCKET_PATH_MAX
    assert embedded_db.socket_dir(long_var) == directory != embedded_db.socket_dir(other_long_var)


def test_a_pid_file_left_by_a_crash_is_not_a_running_server(tmp_path):
    pgdata = embedded_db.data_dir(tmp_path)
    pgdata.mkdir()
    assert embedded_db.running_pid(tmp_path) is None  # no pid file

    # The pid now belongs to a live process that is not this data directory's postgres.
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n")

    assert embedded_db.running_pid(tmp_path) is None


@pytest.mark.slow
def test_it_starts_stops_and_starts_again_with_the_data_kept(tmp_path):
    var = tmp_path / "var"
    try:
        url = embedded_db.start(var)
        assert embedded_db.running_pid(var) is not None
        assert embedded_db.start(var) == url  # already running: the same server
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE kept (note text)")
            connection.execute("INSERT INTO kept VALUES ('still here')")

        assert embedded_db.stop(var) is True
        assert embedded_db.running_pid(var) is None
        assert embedded_db.stop(var) is False

        embedded_db.start(var)
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT note FROM kept").fetchall() == [("still here",)]
    finally:
        embedded_db.stop(var)
    assert embedded_db.running_pid(var) is None
