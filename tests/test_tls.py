"""The gateway's TLS endpoint, seen by a plain TLS client."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from cryptography import x509

from keys.ca import write_credentials
from keys.identity import Identity, Role
from tests.conftest import Running


def _context(
    running: Running, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion
) -> ssl.SSLContext:
    credentials = running.client(Role.BANK, "CQRCB")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = minimum
    context.maximum_version = maximum
    context.load_verify_locations(cadata=credentials.ca.decode())
    context.load_cert_chain(
        credentials.directory / "cert.pem", credentials.directory / "key.pem"
    )
    context.set_alpn_protocols(["h2"])
    return context


def server_certificate(running: Running) -> x509.Certificate:
    context = _context(running, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    with (
        socket.create_connection(
            ("127.0.0.1", running.gateway.port), timeout=10
        ) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_tls_1_1_is_refused(running: Running) -> None:
    try:
        context = _context(running, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with (
        socket.create_connection(
            ("127.0.0.1", running.gateway.port), timeout=10
        ) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_server_certificate_reloads_without_restart(running: Running) -> None:
    before = server_certificate(running)

    renewed = running.ca.dev_generate_credentials(
        Identity(Role.GATEWAY, "gateway"), server_names=("localhost", "127.0.0.1")
    )
    time.sleep(0.01)  # a distinct modification time on coarse file systems
    write_credentials(renewed, running.ca.cert, running.config.tls_cert.parent)

    after = server_certificate(running)
    assert before.serial_number != after.serial_number
    assert after.serial_number == renewed.cert.serial_number
