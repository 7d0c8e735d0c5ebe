"""The same Kafka broker with a SASL_SSL listener, SCRAM users and ACLs (opt in for tests).

`start_secured_kafka` makes a throwaway CA and a broker certificate for 127.0.0.1/localhost in
the state dir (PEM, read by the broker's `ssl.keystore.type=PEM`), creates one SCRAM-SHA-512 user
per `KafkaUser` when it formats the storage (KRaft: no running broker needed), starts the broker
with `StandardAuthorizer` and the admin as its only super user, then grants each user only what
it needs: READ, WRITE, CREATE and DESCRIBE on topics starting with its topic prefix, READ and
DESCRIBE on consumer groups starting with one of its group prefixes. Clients reach it only
through the SASL_SSL listener; the controller listener stays PLAINTEXT on 127.0.0.1, and its
peer (the broker itself, unauthenticated there) is the `ANONYMOUS` super user.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack.kafka import (
    _HEAP,
    _LOG4J_PROPERTIES,
    READY_TIMEOUT,
    _cluster_id,
    find_java,
    kafka_dir,
    kafka_pid_file,
    provision_kafka,
    running_kafka,
)
from devstack.processes import (
    RunningProcess,
    StackError,
    ensure_port_free,
    free_port,
    port_is_open,
    run,
    say,
    spawn,
    stopwatch,
    wait_until,
)

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
CLI_USER = "cli"


@dataclass(frozen=True)
class KafkaUser:
    """A SCRAM user of the secured broker and the resources its ACLs cover (prefixes)."""

    name: str
    password: str
    topic_prefix: str | None = None
    group_prefixes: tuple[str, ...] = ()


def new_user(
    name: str, *, topic_prefix: str | None = None, group_prefixes: Sequence[str] = ()
) -> KafkaUser:
    """A user with a fresh random password."""
    return KafkaUser(name, secrets.token_urlsafe(24), topic_prefix, tuple(group_prefixes))


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA: its certificate file and what it needs to sign."""

    cert_file: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SecuredKafka:
    """A running secured broker: where it listens, the CA its certificate comes from, its users."""

    process: RunningProcess
    bootstrap_servers: str
    ca_file: Path
    admin: KafkaUser
    users: dict[str, KafkaUser]

    def client_env(self, user: str) -> dict[str, str]:
        """The KAFKA_* environment of a client connecting as `user`."""
        account = self.admin if user == ADMIN else self.users[user]
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": account.name,
            "KAFKA_SASL_PASSWORD": account.password,
            "KAFKA_SSL_CAFILE": str(self.ca_file),
        }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def make_ca(directory: Path, name: str = "devstack test CA") -> CertificateAuthority:
    """A new self-signed CA valid for a week, its certificate written to directory/ca.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file = directory / "ca.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert_file, certificate, key)


def _broker_certificate(ca: CertificateAuthority) -> tuple[str, str]:
    """A broker certificate for 127.0.0.1 and localhost signed by `ca`: (chain PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    chain = certificate.public_bytes(serialization.Encoding.PEM).decode()
    # Unencrypted PEM keys are read only from the inline `ssl.keystore.key`, in PKCS#8.
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return chain, key_pem


def _inline(pem: str) -> str:
    """A PEM text as one properties value (Java properties turn `\\n` back into newlines)."""
    return pem.strip().replace("\n", "\\n")


def _jaas(user: KafkaUser) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user.name}" password="{user.password}";'
    )


def _server_properties(
    port: int, controller_port: int, data_dir: Path, ca: CertificateAuthority, admin: KafkaUser
) -> str:
    chain, key = _broker_certificate(ca)
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": _jaas(admin),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": _inline(chain),
        "ssl.keystore.key": _inline(key),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca.cert_file),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{admin.name};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": "8388608",
    }
    return "".join(f"{name}={value}\n" for name, value in settings.items())


def _admin_client_properties(ca: CertificateAuthority, admin: KafkaUser) -> str:
    settings = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": MECHANISM,
        "sasl.jaas.config": _jaas(admin),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca.cert_file),
    }
    return "".join(f"{name}={value}\n" for name, value in settings.items())


def _grant(
    java_command: list[str], bootstrap: str, admin_config: Path, home: Path, user: KafkaUser
) -> None:
    principal = ["--allow-principal", f"User:{user.name}"]
    base = [
        *java_command,
        "kafka.admin.AclCommand",
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        str(admin_config),
        "--add",
        "--force",
        *principal,
        "--resource-pattern-type",
        "prefixed",
    ]
    topic_ops = ["Read", "Write", "Create", "Describe"]
    if user.topic_prefix is not None:
        operations = [arg for op in topic_ops for arg in ("--operation", op)]
        run([*base, *operations, "--topic", user.topic_prefix], what="granting topics", cwd=home)
    if user.group_prefixes:
        groups = [arg for group in user.group_prefixes for arg in ("--group", group)]
        operations = ["--operation", "Read", "--operation", "Describe"]
        run([*base, *operations, *groups], what="granting consumer groups", cwd=home)


def start_secured_kafka(
    state_dir: Path,
    users: Sequence[KafkaUser],
    port: int | None = None,
    *,
    timeout: float = READY_TIMEOUT,
    die_with_parent: bool = False,
) -> SecuredKafka:
    """Start a fresh single-node broker whose only client listener is SASL_SSL (SCRAM-SHA-512),
    with `users` and their ACLs; wait until it serves authenticated requests."""
    state_dir = state_dir.resolve()
    if running_kafka(state_dir) is not None:
        raise StackError(f"a broker from {state_dir} already runs")
    libs = provision_kafka()
    java = find_java()
    port = port or free_port()
    ensure_port_free(port, "Kafka (SASL_SSL)", "KAFKA_PORT")
    home = kafka_dir(state_dir)
    data_dir = home / "data"
    if data_dir.exists() and any(data_dir.iterdir()):
        raise StackError(
            f"{data_dir} is not empty: a secured broker starts on fresh storage (its users are "
            "made when it is formatted); delete it or use another --state-dir"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # the broker's key and the users' passwords live here
    admin = new_user(ADMIN)
    ca = make_ca(home / "tls")
    config = home / "server.properties"
    config.write_text(_server_properties(port, free_port(), data_dir, ca, admin))
    config.chmod(0o600)
    admin_config = home / "admin-client.properties"
    admin_config.write_text(_admin_client_properties(ca, admin))
    admin_config.chmod(0o600)
    (home / "users.json").write_text(json.dumps([asdict(u) for u in (admin, *users)]))
    log4j = home / "log4j.properties"
    log4j.write_text(_LOG4J_PROPERTIES)
    log_path = home / "kafka.log"
    java_command = [
        java,
        f"-Dlog4j.configuration={log4j.as_uri()}",
        f"-Dkafka.logs.dir={home}",
        "-cp",
        f"{libs}/*",
    ]
    with stopwatch() as elapsed:
        scram = [
            arg
            for user in (admin, *users)
            for arg in ("--add-scram", f"{MECHANISM}=[name={user.name},password={user.password}]")
        ]
        run(
            [
                *java_command,
                *("kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)),
                *scram,
            ],
            what="formatting Kafka storage with SCRAM users",
            cwd=home,
        )
        broker = spawn(
            "kafka",
            [*java_command[:1], *_HEAP, *java_command[1:], "kafka.Kafka", str(config)],
            address=f"127.0.0.1:{port}",
            log_path=log_path,
            pid_file=kafka_pid_file(state_dir),
            cwd=home,
            die_with_parent=die_with_parent,
        )
        try:
            wait_until(
                lambda: port_is_open("127.0.0.1", port) and _started(log_path),
                timeout=timeout,
                what=f"secured Kafka on 127.0.0.1:{port}",
                log_path=log_path,
                process=broker,
            )
            bootstrap = f"127.0.0.1:{port}"
            for user in users:
                _grant(java_command, bootstrap, admin_config, home, user)
        except BaseException:
            broker.stop(timeout=10.0)
            raise
        say(f"secured Kafka (SASL_SSL) ready on {bootstrap} (pid {broker.pid}) in {elapsed()}")
    return SecuredKafka(broker, bootstrap, ca.cert_file, admin, {u.name: u for u in users})


def _started(log_path: Path) -> bool:
    try:
        return "Kafka Server started" in log_path.read_text(errors="replace")
    except OSError:
        return False


def stack_users(service_names: Sequence[str], topic_prefix: str) -> list[KafkaUser]:
    """One user per service (topics under the prefix, the groups named after the service) and
    `cli` (topics only: it reads by partition assignment, in no group)."""
    topics = f"{topic_prefix}."
    return [
        *(new_user(name, topic_prefix=topics, group_prefixes=[name]) for name in service_names),
        new_user(CLI_USER, topic_prefix=topics),
    ]


def write_env_files(kafka: SecuredKafka, directory: Path) -> list[Path]:
    """Each user's KAFKA_* settings as `<directory>/<user>.env` (mode 0600: they hold the
    password), for `set -a; . <file>` before starting a service or the CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    written = []
    for user in kafka.users:
        path = directory / f"{user}.env"
        path.touch(mode=0o600)
        path.write_text(
            "".join(f"{name}={value}\n" for name, value in kafka.client_env(user).items())
        )
        written.append(path)
    return written
