"""What the distributed parts may listen on or connect to: neither a plain Dask scheduler nor
keras-tuner's oracle (an insecure gRPC port) authenticates anyone, and whoever reaches either
runs code on every worker or rewrites the search's results. So they stay on the loopback
interface, reached from other machines through an SSH tunnel; Dask may also use TLS
(`tls://`, with the certificates of `distributed.security.Security` in its configuration)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from fer_kaggle.errors import ConfigError

TUNNEL_HELP = ("reach it through an SSH tunnel instead (on each other machine: "
               "`ssh -N -L PORT:127.0.0.1:PORT CHIEF_HOST`, then use 127.0.0.1:PORT)")


def is_loopback(host):
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_dask_address(address):
    """A scheduler address to send fold jobs to: TLS, or on this machine's loopback."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme == "tls":
        return address
    if parts.scheme in ("tcp", "") and parts.hostname and is_loopback(parts.hostname):
        return address
    raise ConfigError(f"--scheduler {address}: a plain Dask scheduler on the network runs the code of whoever reaches "
                      f"it; use tls:// with certificates (distributed.security.Security), or start it with "
                      f"`dask scheduler --host 127.0.0.1` and {TUNNEL_HELP}")


def check_oracle_address(host):
    """keras-tuner's chief binds its oracle to `host`: only the loopback interface."""
    if host and not is_loopback(host):
        raise ConfigError(f"KERASTUNER_ORACLE_IP={host}: keras-tuner's oracle listens without TLS or authentication, "
                          f"so the chief binds to 127.0.0.1 only; {TUNNEL_HELP}")
    return host
