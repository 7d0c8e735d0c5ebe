"""A real Prometheus server (Debian's package) scraping the services, for the scrape test.

It loads the alerting rules that ship with the stack (infra/prometheus/alerts.yml); the same
package's promtool checks and unit-tests them. amtool (Debian's prometheus-alertmanager) checks
the example Alertmanager configuration (infra/alertmanager/alertmanager.yml).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.processes import (
    RunningProcess,
    StackError,
    ensure_port_free,
    run,
    say,
    spawn,
    stopwatch,
    wait_until,
)

READY_TIMEOUT = 60.0
ALERT_RULES = Path(__file__).resolve().parents[1] / "prometheus" / "alerts.yml"


def find_prometheus() -> str | None:
    """The prometheus binary on PATH, if any."""
    return shutil.which("prometheus")


def provision_prometheus() -> str:
    """Return the prometheus binary, installing Debian's package when running as root."""
    return _provision_from_debian("prometheus", "prometheus")


def _provision_from_debian(binary_name: str, package: str) -> str:
    """The binary on PATH, else install the Debian package that carries it (as root)."""
    binary = shutil.which(binary_name)
    if binary is not None:
        return binary
    install = f"apt-get update && apt-get install -y {package}"
    if os.geteuid() != 0:
        raise StackError(f"{binary_name} not found on PATH: run `sudo sh -c '{install}'`")
    say(f"{binary_name} not found; installing {package} with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with stopwatch() as elapsed:
        run(["apt-get", "update"], what="apt-get update", env=env)
        run(
            ["apt-get", "install", "-y", "--no-install-recommends", package],
            what=f"apt-get install {package}",
            env=env,
        )
    binary = shutil.which(binary_name)
    if binary is None:
        raise StackError(f"installed {package} but {binary_name} is not on PATH")
    say(f"installed {package} in {elapsed()}")
    return binary


def find_promtool() -> str | None:
    """The promtool binary on PATH, if any (Debian ships it in the prometheus package)."""
    return shutil.which("promtool")


def provision_promtool() -> str:
    """Return the promtool binary, provisioning the prometheus package that carries it."""
    binary = find_promtool()
    if binary is not None:
        return binary
    provision_prometheus()
    binary = find_promtool()
    if binary is None:
        raise StackError(
            "prometheus is installed but promtool is not on PATH: "
            "install Debian's prometheus package, which ships both"
        )
    return binary


def provision_amtool() -> str:
    """Return amtool (Alertmanager's command line, which checks its configuration), installing
    Debian's prometheus-alertmanager package that carries it when running as root."""
    return _provision_from_debian("amtool", "prometheus-alertmanager")


def scrape_config(
    targets: Mapping[str, str], interval_ms: int = 1000, rule_files: Sequence[Path] = ()
) -> str:
    """A prometheus.yml (JSON is valid YAML) scraping each job's host:port, rules as often."""
    interval = f"{interval_ms}ms"
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()
        ],
    }
    return json.dumps(config, indent=2)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1.0) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def start_prometheus(
    state_dir: Path,
    port: int,
    targets: Mapping[str, str],
    *,
    rule_files: Sequence[Path] = (ALERT_RULES,),
    die_with_parent: bool = True,
) -> RunningProcess:
    """Start Prometheus on 127.0.0.1:port scraping `targets` ({job: host:port}) every second.

    It evaluates `rule_files` as often: by default the alerting rules that ship with the stack.
    """
    binary = provision_prometheus()
    ensure_port_free(port, "Prometheus", "PROMETHEUS_PORT")
    home = state_dir.resolve() / "prometheus"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(scrape_config(targets, rule_files=[path.resolve() for path in rule_files]))
    log_path = home / "prometheus.log"
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with stopwatch() as elapsed:
        process = spawn(
            "prometheus",
            command,
            address=f"127.0.0.1:{port}",
            log_path=log_path,
            pid_file=home / "prometheus.pid",
            cwd=home,
            die_with_parent=die_with_parent,
        )
        try:
            wait_until(
                lambda: _ready(port),
                timeout=READY_TIMEOUT,
                what="Prometheus",
                log_path=log_path,
                process=process,
            )
        except StackError:
            process.stop(timeout=5.0)
            raise
        say(f"Prometheus ready on 127.0.0.1:{port} (pid {process.pid}) in {elapsed()}")
    return process
