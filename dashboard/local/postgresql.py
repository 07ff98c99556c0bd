"""A disposable PostgreSQL cluster from Debian's `postgresql` package: its own folder under the
temp dir, 127.0.0.1 only, a free port, trust for local connections, durability off (it is
thrown away). For the tests, and for trying WARREN_DATABASE_URL on one machine."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dashboard.errors import WarrenError
from dashboard.local.rabbitmq import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
USER = "warren"


class LocalPostgresError(WarrenError):
    pass


class LocalPostgres:
    def __init__(self, base_dir: Path, port: int):
        self.base_dir = base_dir
        self.port = port

    @classmethod
    def create(cls) -> "LocalPostgres":
        if not BIN_DIRS:
            raise LocalPostgresError(
                "PostgreSQL is not installed: `apt-get install postgresql` (bin/bootstrap --test "
                "does it)."
            )
        # Not under pytest's tmp_path: its folders are 0700, and the server runs as `postgres`
        # when Warren runs as root (PostgreSQL refuses to run as root).
        base_dir = Path(tempfile.mkdtemp(prefix="warren-postgres-"))
        base_dir.chmod(0o755)
        return cls(base_dir, free_port())

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if os.getuid() == 0:
            shutil.chown(self.base_dir, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.base_dir / "data"), "-U", USER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.base_dir} -F "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.base_dir / "data"), "-l", str(self.base_dir / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop(self) -> None:
        data = self.base_dir / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(BIN_DIRS[0] / program), *args]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.base_dir)
        if check and done.returncode != 0:
            raise LocalPostgresError(f"{program} failed: {(done.stderr or done.stdout).strip()}")

    def __enter__(self) -> "LocalPostgres":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
