"""`serve --ssl-certfile/--ssl-keyfile`: HTTPS and gRPC over TLS with one certificate."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

import modelport
from modelport.config import Settings
from tests.e2e.conftest import free_port, start_server


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command line."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_and_grpc_over_tls(
    tmp_path: Path,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    cert, key = _certificate(tmp_path)
    grpc_port = free_port()
    tls = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    server = start_server(
        ["iris"], settings, tmp_path, *tls, "--grpc-port", str(grpc_port), scheme="https"
    )
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        answer = httpx.post(
            f"{server.url}/v1/models/iris:predict",
            json={"instances": [[5.1, 3.5, 1.4, 0.2]]},
            verify=trusted,
        )
        assert answer.json() == {"predictions": [0]}
        try:
            refused = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2).status_code
        except httpx.TransportError:
            refused = 0
        assert refused != 200  # plain HTTP is not answered on a TLS port
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", credentials) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert f"https://127.0.0.1:{server.port}" in server.log()
    finally:
        server.terminate()


def test_a_certificate_without_its_key_is_refused(
    cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    cert, _ = _certificate(tmp_path)
    result = cli("serve", "iris", "--ssl-certfile", str(cert))
    assert result.returncode == 1
    assert "both a certificate and its key" in result.stderr
