"""A private RabbitMQ node from the distribution's ``rabbitmq-server``, with its state under the devstack directory.

The node shares nothing with a system RabbitMQ that may be running: its own node name, AMQP and distribution ports,
config file (the system one names the system node's listener), env file, Erlang cookie (``HOME`` points into the
state directory) and mnesia directory. Only epmd, Erlang's port mapper on 4369, is shared, as Erlang intends.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from fax_devstack.processes import (
    ChildProcess,
    DevstackError,
    OsUser,
    chown_tree,
    ensure_port_free,
    ensure_reachable,
    port_accepts,
    run_command,
    spawn,
    stop_leftover,
    wait_until_ready,
)

log = logging.getLogger(__name__)

EPMD_PORT = 4369

# Debian's /usr/sbin/rabbitmq-* are wrappers that, for root, `su` to rabbitmq and cd to /var/lib/rabbitmq;
# the scripts behind them honour our environment as given.
_SCRIPT_DIRS = (Path("/usr/lib/rabbitmq/bin"),)

_CONFIG = """\
# The fax devstack's private node. Its listener comes from RABBITMQ_NODE_IP_ADDRESS / RABBITMQ_NODE_PORT;
# this file exists so that /etc/rabbitmq/rabbitmq.conf (the system node's listener) is not read.
loopback_users.guest = true
log.console = true
log.console.level = info
log.file = false
"""


def _script(name: str) -> str:
    for directory in _SCRIPT_DIRS:
        candidate = directory / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise DevstackError(f"{name} not found: install the rabbitmq-server package (`make setup`)")
    return found


def _service_user() -> OsUser:
    """Root hands the node to the package's ``rabbitmq`` account; anyone else runs it as themselves."""
    current = OsUser.current()
    if current.uid != 0:
        return current
    return OsUser.lookup("rabbitmq") or current


class PrivateRabbitMQ:
    """One RabbitMQ node, started on ``amqp_port`` with its data in ``directory``; reused on the next start.

    The node name carries the AMQP port, so two devstacks on different ports (``make run`` and the tests) run
    side by side; a different port therefore also means a fresh mnesia directory.
    """

    def __init__(self, directory: Path, log_dir: Path, *, amqp_port: int, dist_port: int) -> None:
        self.directory = directory.resolve()
        self.log_path = log_dir.resolve() / "rabbitmq.log"
        self.amqp_port = amqp_port
        self.dist_port = dist_port
        self.node_name = f"fax-devstack-{amqp_port}@localhost"
        self.user = _service_user()
        self._child: ChildProcess | None = None
        self._epmd_was_running = True

    @property
    def amqp_url(self) -> str:
        # guest/guest is created on the first boot and, by RabbitMQ's default, only accepted from localhost.
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid_file(self) -> Path:
        return self.directory / "rabbitmq.pid"

    def environment(self) -> dict[str, str]:
        """The variables that make ``rabbitmq-server`` and ``rabbitmqctl`` talk about this node only."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            {
                # The Erlang cookie lives in $HOME: server and CLI must agree, and must not touch the system's.
                "HOME": str(self.directory),
                "RABBITMQ_NODENAME": self.node_name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.amqp_port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.directory / "log"),
                "RABBITMQ_PID_FILE": str(self.pid_file),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.directory / "advanced.config"),
                "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                # Only matters when this node is the one that starts epmd.
                "ERL_EPMD_ADDRESS": "127.0.0.1",
            }
        )
        return env

    def _prepare_directory(self) -> None:
        for sub in ("mnesia", "log"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq.conf").write_text(_CONFIG)
        (self.directory / "rabbitmq-env.conf").write_text("# empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n")
        chown_tree(self.directory, self.user)
        ensure_reachable(self.directory, self.user)

    async def start(self) -> str:
        """Start the node (after stopping one a killed devstack left behind); its AMQP URL once it serves."""
        server = _script("rabbitmq-server")
        self._prepare_directory()
        # The pid file names beam, whose command line carries the node's HOME (not its name) as `-home DIR`.
        if await stop_leftover(self.pid_file, str(self.directory)):
            log.warning("stopped a RabbitMQ node left running by an earlier devstack (%s)", self.node_name)
        ensure_port_free(self.amqp_port, "RabbitMQ AMQP")
        ensure_port_free(self.dist_port, "RabbitMQ distribution")
        self._epmd_was_running = await port_accepts(EPMD_PORT)
        self._child = await spawn(
            "rabbitmq",
            [server],
            log_path=self.log_path,
            env=self.environment(),
            cwd=self.directory,
            user=self.user,
        )
        await wait_until_ready(
            "RabbitMQ", lambda: port_accepts(self.amqp_port), child=self._child, time_limit=90, interval=0.2
        )
        code, output = await self._ctl("await_startup", "--timeout", "60", time_limit=75)
        if code != 0:
            raise DevstackError(f"rabbitmqctl await_startup failed for {self.node_name}:\n{output}")
        return self.amqp_url

    async def _ctl(self, *args: str, time_limit: float = 30) -> tuple[int, str]:
        return await run_command(
            [_script("rabbitmqctl"), "-n", self.node_name, *args],
            env=self.environment(),
            cwd=self.directory,
            user=self.user,
            time_limit=time_limit,
        )

    async def stop(self) -> None:
        """Stop the node if this object started it: SIGTERM makes the start script shut RabbitMQ down cleanly."""
        child, self._child = self._child, None
        if child is None:
            return
        code = await child.stop(grace=45)
        log.debug("rabbitmq exited with %s", code)
        if not self._epmd_was_running:
            # Our node started epmd, which outlives it; `epmd -kill` refuses while any node is still registered.
            epmd = shutil.which("epmd")
            if epmd is not None:
                await run_command([epmd, "-kill"], time_limit=10)
