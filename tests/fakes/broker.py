"""A real mosquitto on a free loopback port, started by the tests (never the system one).

`Mosquitto` writes its own config (`mosquitto -c`), optionally with a TLS listener whose
certificate is made at test time (the `cryptography` package) and a password file, and can be
stopped, killed and restarted on the same ports to test reconnection.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from printforge.hardware.mqtt.sim.mosquitto import LocalMosquitto, TlsFiles, free_port

__all__ = [
    "ConfiguredMosquitto",
    "Mosquitto",
    "TlsFiles",
    "free_port",
    "make_tls_files",
]

BAMBU_ACCESS_CODE = "12345678"


def make_tls_files(folder: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "printforge test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


class Mosquitto(LocalMosquitto):
    """LocalMosquitto that fails the test, with the fix, when mosquitto is missing."""

    def __init__(self, folder: Path, **kw: Any) -> None:
        try:
            super().__init__(folder, **kw)
        except FileNotFoundError as err:
            pytest.fail(f"{err}: scripts/setup installs it")


class ConfiguredMosquitto(Mosquitto):
    """A test broker whose security settings are the generated snippet, as an operator's."""

    def __init__(self, folder: Path, snippet: Path, *, allow_anonymous: bool = False) -> None:
        super().__init__(folder)
        self.snippet = snippet
        self.allow_anonymous = allow_anonymous

    def _write_config(self) -> Path:
        lines = [
            f"user {getpass.getuser()}",
            "persistence false",
            "log_type error",
            "log_type warning",
            f"log_dest file {self.log_path}",
        ]
        for line in self.snippet.read_text().splitlines():
            if line.startswith("allow_anonymous") and self.allow_anonymous:
                # The ACL alone must keep an anonymous client out of the farm's topics.
                line = "allow_anonymous true"
            if line and not line.startswith("#"):
                lines.append(line)
        lines.append(f"listener {self.port} 127.0.0.1")
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf
