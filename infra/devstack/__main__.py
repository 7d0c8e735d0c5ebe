"""Command line: python -m devstack {up,down,status,env,provision,kafka-secured}."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devstack import kafka, kafka_secured, services, stack
from devstack.processes import StackError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run a real Kafka broker and PostgreSQL (and the services) locally.",
        epilog="Ports: KAFKA_PORT (9092), POSTGRES_PORT (5432), SUBMISSION_HTTP_PORT (8001), "
        "LLM_PROVIDER_HTTP_PORT (8002), CJ_HTTP_PORT (8003). KAFKA_BOOTSTRAP_SERVERS / "
        "DATABASE_URL, when set and reachable, are used instead of starting a server.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where pids, logs and data live (default: $DEVSTACK_STATE_DIR or <repo>/.stack)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start Kafka, PostgreSQL and the services")
    up.add_argument("--no-services", action="store_true", help="only Kafka and PostgreSQL")
    up.add_argument(
        "--fast", action="store_true", help="PostgreSQL without fsync (for test runs only)"
    )
    up.add_argument(
        "--tls",
        action="store_true",
        help="PostgreSQL speaks TLS only, with a test CA made in the state dir; the services "
        "connect with DATABASE_SSLMODE=verify-full (`env` prints the settings)",
    )
    up.add_argument(
        "--database",
        action="append",
        metavar="NAME",
        help=f"database to create (repeatable; default: {', '.join(stack.DEFAULT_DATABASES)})",
    )
    commands.add_parser("down", help="stop what `up` started, by PID")
    commands.add_parser("status", help="show what runs where")
    commands.add_parser("env", help="print `export KAFKA_BOOTSTRAP_SERVERS=... DATABASE_URL=...`")
    commands.add_parser(
        "provision",
        help="fetch the Kafka jars; install PostgreSQL, Prometheus, amtool, Chromium with "
        "ChromeDriver (apt) and axe-core (npm ci in infra/browser)",
    )
    secured = commands.add_parser(
        "kafka-secured",
        help="start only a Kafka broker whose client listener is SASL_SSL, with a SCRAM user and "
        "ACLs per service and for the CLI; writes each user's KAFKA_* settings to "
        "<state-dir>/kafka/users/<user>.env (`down` stops it)",
    )
    secured.add_argument(
        "--topic-prefix",
        default=os.environ.get("TOPIC_PREFIX") or "huleedu",
        help="the prefix the users' topic ACLs cover (default: $TOPIC_PREFIX or huleedu)",
    )
    return parser


def _start_secured_kafka(settings: stack.StackSettings, topic_prefix: str) -> None:
    names = [service.name for service in services.SERVICES]
    broker = kafka_secured.start_secured_kafka(
        settings.state_dir,
        kafka_secured.stack_users(names, topic_prefix),
        settings.kafka_port,
    )
    env_dir = kafka.kafka_dir(settings.state_dir) / "users"
    for path in kafka_secured.write_env_files(broker, env_dir):
        print(path)


def main(argv: list[str] | None = None) -> int:
    """Run one devstack command; return the process exit code."""
    args = _parser().parse_args(argv)
    settings = stack.settings_from_environment(args.state_dir)
    try:
        if args.command == "up":
            stack.up(
                settings,
                with_services=not args.no_services,
                fast=args.fast,
                tls=args.tls,
                databases=args.database or stack.DEFAULT_DATABASES,
            )
        elif args.command == "down":
            stack.down(settings)
        elif args.command == "status":
            print("\n".join(stack.status_lines(settings)))
        elif args.command == "env":
            print(stack.running_endpoints(settings).shell_exports())
        elif args.command == "provision":
            stack.provision()
        elif args.command == "kafka-secured":
            _start_secured_kafka(settings, args.topic_prefix)
    except StackError as error:
        print(f"devstack: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
