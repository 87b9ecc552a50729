"""Certificates and keys for one local control plane.

kube-apiserver needs a serving certificate, a client CA (for the admin certificate in
``system:masters``) and a service-account signing key. Everything is generated locally with
``cryptography``; nothing is committed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class ClusterPKI:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool = False,
    server_sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server_sans else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(server_sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _already_made(files: object, directory: Path) -> bool:
    """Whether every path of ``files`` (a dataclass of paths) exists; else ``directory`` is made for them."""
    if all(p.exists() for p in vars(files).values()):
        return True
    directory.mkdir(parents=True, exist_ok=True)
    return False


def _new_ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Name, x509.Certificate]:
    key, name = _key(), _name(common_name)
    return key, name, _issue(name, key, name, key, ca=True)


def generate(directory: Path) -> ClusterPKI:
    """Create (or reuse) the PKI of one cluster under ``directory``."""
    pki = ClusterPKI(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
    if _already_made(pki, directory):
        return pki
    ca_key, ca_name, ca_cert = _new_ca("rabbitsync-local-ca")
    serving_key = _key()
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
    ]
    serving_cert = _issue(_name("kube-apiserver"), serving_key, ca_name, ca_key, server_sans=sans)
    admin_key = _key()
    admin_cert = _issue(_name("rabbitsync-admin", "system:masters"), admin_key, ca_name, ca_key)
    sa_key = _key()
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.serving_cert, serving_cert)
    _write_key(pki.admin_key, admin_key)
    _write_cert(pki.admin_cert, admin_cert)
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


@dataclass(frozen=True)
class BrokerPKI:
    """A throwaway CA and the broker's serving certificate (SAN: localhost and 127.0.0.1)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def generate_broker(directory: Path, ca_name: str = "rabbitsync-broker-ca") -> BrokerPKI:
    """Create (or reuse) a CA and a RabbitMQ serving certificate under ``directory``."""
    pki = BrokerPKI(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )
    if _already_made(pki, directory):
        return pki
    ca_key, ca, ca_cert = _new_ca(ca_name)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_key = _key()
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.server_cert, _issue(_name("localhost"), server_key, ca, ca_key, server_sans=sans))
    return pki


def client_certificate(pki: ClusterPKI, directory: Path, user: str, groups: tuple[str, ...]) -> tuple[Path, Path]:
    """A client certificate for ``user`` in ``groups`` signed by the cluster CA (e.g. a kubelet's)."""
    cert_path, key_path = directory / f"{user.replace(':', '-')}.crt", directory / f"{user.replace(':', '-')}.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise TypeError(f"{pki.ca_key} is not an RSA key")
    key = _key()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    _write_key(key_path, key)
    _write_cert(cert_path, _issue(x509.Name(attrs), key, ca_cert.subject, ca_key))
    return cert_path, key_path
