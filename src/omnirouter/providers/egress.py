"""The way out to upstreams: the egress proxy the environment names, and whom TLS trusts.

Read once, when the upstream pool is made (never per request): `HTTPS_PROXY` for https origins,
`HTTP_PROXY` for http ones (lower-case names win, as curl and urllib have it), `NO_PROXY` for the
hosts that bypass them, and `SSL_CERT_FILE` / `SSL_CERT_DIR` for the CAs the default TLS context
trusts. Only http:// proxies are spoken: CONNECT tunnels for https origins, absolute-form requests
for http ones.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy. `authorization` (a Proxy-Authorization value) stays out of reprs and messages:
    `label` is what an error may name."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_proxy(url: str, variable: str) -> Proxy:
    """`http://[user:pass@]host[:port]` (a bare `host:port` is read as http). Raises ValueError,
    naming the variable but never the credentials."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme != "http":
        raise ValueError(f"{variable}: only http:// proxies are supported (got {parts.scheme}://)")
    if not parts.hostname or not port:
        raise ValueError(f"{variable}: expected http://[user:password@]host:port")
    authorization = None
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


class NoProxy:
    """`NO_PROXY` as curl reads it: comma- or space-separated entries, each `*` (every host), a host
    name that also covers its subdomains (a leading `.` or `*.` changes nothing), an IP address or a
    CIDR block; a host or address may end in `:port` to bypass only that port."""

    def __init__(self, value: str) -> None:
        self.everything = False
        self.names: list[tuple[str, int | None]] = []
        self.networks: list[tuple[IPNetwork, int | None]] = []
        for entry in value.replace(" ", ",").split(","):
            entry = entry.strip().lower()
            if entry == "*":
                self.everything = True
            elif entry:
                self._add(entry)

    def _add(self, entry: str) -> None:
        host, port = entry, None
        if entry.startswith("["):  # [v6]:port
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest[1:].isdigit() else None
        elif entry.count(":") == 1:  # name:port or v4:port (more colons: a bare v6 address)
            head, _, tail = entry.partition(":")
            if tail.isdigit():
                host, port = head, int(tail)
        try:
            self.networks.append((ipaddress.ip_network(host, strict=False), port))
        except ValueError:
            host = host.removeprefix("*").lstrip(".")
            if host:
                self.names.append((host, port))

    def bypass(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        for name, only in self.names:
            if (only is None or only == port) and (host == name or host.endswith("." + name)):
                return True
        if self.networks:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return False
            for network, only in self.networks:
                if (only is None or only == port) and address in network:
                    return True
        return False


class Egress:
    """Which proxy, if any, an origin is reached through, and the default TLS trust."""

    def __init__(
        self,
        *,
        http_proxy: str | None = None,
        https_proxy: str | None = None,
        no_proxy: str = "",
        ca_file: str | None = None,
        ca_dir: str | None = None,
    ) -> None:
        self.http = parse_proxy(http_proxy, "HTTP_PROXY") if http_proxy else None
        self.https = parse_proxy(https_proxy, "HTTPS_PROXY") if https_proxy else None
        self.no_proxy = NoProxy(no_proxy)
        self.ca_file = ca_file
        self.ca_dir = ca_dir

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Egress:
        env = os.environ if environ is None else environ

        def read(name: str) -> str | None:
            lower = name.lower()  # set, even empty, the lower-case name decides (curl, urllib)
            value = env[lower] if lower in env else env.get(name)
            return (value.strip() or None) if value else None

        return cls(
            http_proxy=read("HTTP_PROXY"),
            https_proxy=read("HTTPS_PROXY"),
            no_proxy=read("NO_PROXY") or "",
            ca_file=env.get("SSL_CERT_FILE") or None,
            ca_dir=env.get("SSL_CERT_DIR") or None,
        )

    def proxy_for(self, tls: bool, host: str, port: int) -> Proxy | None:
        proxy = self.https if tls else self.http
        if proxy is None or self.no_proxy.bypass(host, port):
            return None
        return proxy

    def default_tls(self) -> ssl.SSLContext:
        """The system's CAs, or only those SSL_CERT_FILE / SSL_CERT_DIR name (as OpenSSL reads them)."""
        return tls_context(self.ca_file, self.ca_dir)


def tls_context(ca_file: str | None = None, ca_dir: str | None = None) -> ssl.SSLContext:
    """A verifying client context; with a CA file or directory it trusts those CAs instead of the system's."""
    return ssl.create_default_context(cafile=ca_file, capath=ca_dir)
