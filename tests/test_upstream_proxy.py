"""Egress: upstreams reached through a real HTTP proxy on loopback (pproxy), NO_PROXY, proxy
credentials, and the CAs TLS trusts (a provider's `ca_file`, SSL_CERT_FILE), with a TLS upstream
whose certificate comes from a test CA (trustme)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pproxy
import pytest
import trustme

from omnirouter.catalog.loader import CatalogLayers
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.egress import Egress, NoProxy
from omnirouter.providers.http1 import Pool, request_head, split_url
from omnirouter.testing import FakeOpenAI, FakeOpenAIThread
from tests.gateway import Gateway
from tests.test_upstream_http1 import FAST, Server, post

PRICES = {"prompt": "0.000001", "completion": "0.000002"}
EGRESS_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")
PASSWORD = "s3cret-p@ss"


class ProxyThread:
    """pproxy's HTTP proxy (CONNECT and absolute-form requests) on its own loop in a thread; `seen`
    lists the targets it connected to, as `host:port`."""

    def __init__(self, users: str | None = None) -> None:
        self.uri = "http://127.0.0.1:0" + (f"#{users}" if users else "")
        self.log: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pproxy", daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the proxy did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # authtime 0: ask for the credentials on every connection (pproxy otherwise trusts an IP for days).
        options = {"rserver": [], "verbose": self.log.append, "authtime": 0}
        self.server = self.loop.run_until_complete(pproxy.Server(self.uri).start_server(options))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.server.close()
        relays = asyncio.all_tasks(self.loop)  # its tunnels still open: end them before the loop
        for task in relays:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*relays, return_exceptions=True))
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.close()

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[str]:
        return [line.split(" -> ", 1)[1] for line in self.log if " -> " in line]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def proxy() -> Iterator[ProxyThread]:
    p = ProxyThread()
    yield p
    p.stop()


@pytest.fixture
def auth_proxy() -> Iterator[ProxyThread]:
    p = ProxyThread(users=f"team:{PASSWORD}")
    yield p
    p.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_pem(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def tls_upstream(ca: trustme.CA) -> Iterator[FakeOpenAIThread]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    handle = FakeOpenAI.run_in_thread(ssl_context=context)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _clean_egress_env(monkeypatch: pytest.MonkeyPatch, tls_upstream: FakeOpenAIThread) -> None:
    """Each test sets the variables it means (they are read when its gateway starts), none leak in."""
    for name in EGRESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    tls_upstream.reset()


def config(*providers: dict[str, Any]) -> dict[str, Any]:
    """One model, `test/egress`, served by the given providers in this order."""
    return {
        "providers": [{"name": p["slug"], "api": "openai", **p} for p in providers],
        "models": [
            {
                "id": "test/egress",
                "name": "Egress",
                "context_length": 8192,
                "endpoints": [
                    {"provider": p["slug"], "upstream_model": f"{p['slug']}-up", "pricing": PRICES} for p in providers
                ],
            }
        ],
    }


def chat(gw: Gateway, **extra: Any) -> httpx.Response:
    """One chat completion, from a client that ignores the proxy variables (the gateway is local)."""
    with httpx.Client(base_url=gw.api, trust_env=False, timeout=30) as client:
        created = client.post(
            "/keys", headers={"Authorization": f"Bearer {gw.management_key}"}, json={"name": "egress"}
        )
        assert created.status_code == 201, created.text
        return client.post(
            "/chat/completions",
            headers={"Authorization": f"Bearer {created.json()['key']}"},
            json={"model": "test/egress", "messages": [{"role": "user", "content": "hi"}], **extra},
        )


def authority(url: str) -> str:
    return httpx.URL(url).netloc.decode()


# -- through the gateway -------------------------------------------------------------------------------


def test_https_upstream_is_reached_through_a_connect_tunnel(make_gateway, monkeypatch, proxy, tls_upstream, ca_pem):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    gw = make_gateway(config({"slug": "secure", "base_url": tls_upstream.base_url, "ca_file": ca_pem}))
    first, second = chat(gw), chat(gw)
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert [r.model for r in tls_upstream.requests] == ["secure-up", "secure-up"]
    # An https target that TLS then verified end to end can only have gone through a CONNECT tunnel;
    # and the second request reused the tunnel (keep-alive), so the proxy saw one.
    assert proxy.seen == [authority(tls_upstream.base_url)]


def test_plain_http_upstream_is_sent_to_the_proxy(make_gateway, monkeypatch, proxy, fake_a):
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    gw = make_gateway(config({"slug": "plain", "base_url": fake_a.base_url}))
    response = chat(gw)
    assert response.status_code == 200, response.text
    assert proxy.seen == [authority(fake_a.base_url)]
    assert fake_a.requests[-1].path == "/v1/chat/completions"  # the proxy turned it back to origin form


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.0/8", "*"])
def test_no_proxy_goes_direct(make_gateway, monkeypatch, proxy, tls_upstream, ca_pem, no_proxy):
    monkeypatch.setenv("https_proxy", proxy.url())
    monkeypatch.setenv("NO_PROXY", no_proxy)
    gw = make_gateway(config({"slug": "secure", "base_url": tls_upstream.base_url, "ca_file": ca_pem}))
    response = chat(gw)
    assert response.status_code == 200, response.text
    assert proxy.seen == []


def test_no_proxy_with_another_port_still_uses_the_proxy(make_gateway, monkeypatch, proxy, fake_a):
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1:1")
    gw = make_gateway(config({"slug": "plain", "base_url": fake_a.base_url}))
    assert chat(gw).status_code == 200
    assert proxy.seen == [authority(fake_a.base_url)]


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_proxy_credentials(make_gateway, monkeypatch, auth_proxy, tls_upstream, fake_a, ca_pem, scheme):
    if scheme == "https":
        variable, upstream = "HTTPS_PROXY", tls_upstream
        provider = {"slug": "up", "base_url": tls_upstream.base_url, "ca_file": ca_pem}
    else:
        variable, upstream = "HTTP_PROXY", fake_a
        provider = {"slug": "up", "base_url": fake_a.base_url}
    # Percent-encoded in the URL, as a password with an `@` must be.
    monkeypatch.setenv(variable, auth_proxy.url(f"team:{PASSWORD.replace('@', '%40')}"))
    good = make_gateway(config(provider))
    response = chat(good)
    assert response.status_code == 200, response.text
    assert len(upstream.requests) == 1

    monkeypatch.setenv(variable, auth_proxy.url("team:wrong-password"))
    bad = make_gateway(config(provider))
    response = chat(bad)
    assert response.status_code == 502, response.text
    message = response.json()["error"]["message"]
    assert f"127.0.0.1:{auth_proxy.port}" in message and "407" in message
    assert "wrong-password" not in response.text and "team" not in response.text
    assert len(upstream.requests) == 1  # nothing went past the proxy


def test_a_dead_proxy_fails_the_attempt_and_the_next_endpoint_serves(make_gateway, monkeypatch, tls_upstream, fake_a):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://user:hunter2@127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("HTTPS_PROXY", dead)  # only https origins use it; fake_a is http
    gw = make_gateway(
        config({"slug": "secure", "base_url": tls_upstream.base_url}, {"slug": "plain", "base_url": fake_a.base_url})
    )
    response = chat(gw, provider={"order": ["secure", "plain"], "allow_fallbacks": True})
    assert response.status_code == 200, response.text
    assert response.json()["provider"] == "plain"
    assert tls_upstream.requests == []

    alone = make_gateway(config({"slug": "secure", "base_url": tls_upstream.base_url}))
    response = chat(alone)
    assert response.status_code == 502
    assert "egress proxy" in response.json()["error"]["message"] and "hunter2" not in response.text


# -- whom TLS trusts -----------------------------------------------------------------------------------


def test_ca_file_per_provider(make_gateway, tls_upstream, ca_pem):
    trusted = make_gateway(config({"slug": "secure", "base_url": tls_upstream.base_url, "ca_file": ca_pem}))
    assert chat(trusted).status_code == 200
    untrusted = make_gateway(config({"slug": "secure", "base_url": tls_upstream.base_url}))
    response = chat(untrusted)
    assert response.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in response.text
    assert len(tls_upstream.requests) == 1


def test_ssl_cert_file_sets_the_default_trust(make_gateway, monkeypatch, tls_upstream, ca_pem):
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    gw = make_gateway(config({"slug": "secure", "base_url": tls_upstream.base_url}))
    response = chat(gw)
    assert response.status_code == 200, response.text
    with pytest.raises(ValueError, match="SSL_CERT_FILE / SSL_CERT_DIR: cannot load"):
        Pool(egress=Egress(ca_file=ca_pem + ".missing"))  # at the start, not at the first request


def test_a_ca_file_that_does_not_load_is_a_config_error(tmp_path, ca_pem):
    config_path = tmp_path / "omnirouter.yaml"
    config_path.write_text("")
    with pytest.raises(ValueError, match=r"providers\[0\]\.ca_file: cannot load"):
        CatalogLayers().add_config(config({"slug": "s", "base_url": "https://x/v1", "ca_file": "nope.pem"}), "x")
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match=r"providers\[0\]\.ca_file: cannot load"):
        CatalogLayers().add_config(config({"slug": "s", "base_url": "", "ca_file": "bad.pem"}), str(config_path))
    # A relative path is read from the config file's folder.
    Path(tmp_path / "ca.pem").write_bytes(Path(ca_pem).read_bytes())
    layers = CatalogLayers()
    layers.add_config(config({"slug": "s", "base_url": "", "ca_file": "ca.pem"}), str(config_path))
    assert layers.providers["s"]["ca_file"] == str(tmp_path / "ca.pem")


# -- the rules, without a network ----------------------------------------------------------------------


def test_no_proxy_rules():
    rules = NoProxy("internal.example, .corp.test,10.0.0.0/8 192.168.1.7:8443,[::1]:9000,*.wild.test")
    assert rules.bypass("internal.example", 443)
    assert rules.bypass("api.internal.example", 443)  # a domain covers its subdomains
    assert not rules.bypass("notinternal.example", 443)  # ... but not names that merely end alike
    assert rules.bypass("corp.test", 80) and rules.bypass("a.b.corp.test", 80)
    assert rules.bypass("x.wild.test", 443)
    assert rules.bypass("10.20.30.40", 443) and not rules.bypass("11.0.0.1", 443)
    assert rules.bypass("192.168.1.7", 8443) and not rules.bypass("192.168.1.7", 443)
    assert rules.bypass("::1", 9000) and not rules.bypass("::1", 80)
    assert not rules.bypass("api.openai.com", 443)
    assert NoProxy("*").bypass("anything", 1)
    assert not NoProxy("").bypass("anything", 1)


def test_proxy_variables():
    egress = Egress.from_environment(
        {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://u%40x:p%3Aw@lower:3128", "NO_PROXY": "svc"}
    )
    assert egress.https is not None and (egress.https.host, egress.https.port) == ("lower", 3128)  # lower-case wins
    assert egress.https.authorization == "Basic dUB4OnA6dw=="  # base64 of the decoded "u@x:p:w"
    assert "p%3Aw" not in repr(egress.https) and "dUB4" not in repr(egress.https)
    assert egress.http is None
    assert egress.proxy_for(True, "api.example", 443) is egress.https
    assert egress.proxy_for(True, "svc", 443) is None and egress.proxy_for(False, "api.example", 80) is None
    assert Egress.from_environment({"HTTP_PROXY": "proxy.corp:8080"}).http.port == 8080  # bare host:port is http
    with pytest.raises(ValueError, match="HTTPS_PROXY: only http:// proxies") as info:
        Egress.from_environment({"HTTPS_PROXY": "socks5://user:topsecret@proxy:1080"})
    assert "topsecret" not in str(info.value)


# -- the pool on asyncio's own loop (the gateway runs uvloop) ------------------------------------------


async def test_pool_tunnels_on_the_asyncio_loop(proxy, tls_upstream, ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    pool = Pool(ssl_context=context, egress=Egress(https_proxy=proxy.url()))
    try:
        url = tls_upstream.base_url + "/chat/completions"
        origin, path = split_url(url)
        body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
        head = request_head(origin, "POST", path, {"Content-Type": "application/json"})
        resp = await pool.request(origin, head + b"%d\r\n\r\n%b" % (len(body), body), FAST, stream=False)
        assert resp.status == 200 and b"choices" in await resp.read()
        resp.close()
    finally:
        pool.close()
    assert proxy.seen == [authority(tls_upstream.base_url)]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "refused the tunnel: HTTP 403 Forbidden"),
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "requires credentials (HTTP 407)"),
        (b"", "closed the connection before answering CONNECT"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "did not answer CONNECT in HTTP"),
    ],
)
async def test_a_refused_tunnel_is_a_connect_error(answer, expected):
    async def handler(reader, writer):
        connects.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()

    connects: list[bytes] = []
    async with Server(handler) as scripted:
        pool = Pool(egress=Egress(https_proxy=f"http://127.0.0.1:{scripted.port}"))
        with pytest.raises(UpstreamError) as info:
            await post(pool, "https://api.example:8443/v1/chat/completions")
        pool.close()
    assert connects[0].startswith(b"CONNECT api.example:8443 HTTP/1.1\r\nHost: api.example:8443\r\n")
    assert info.value.kind == "connect" and info.value.retryable
    assert f"Egress proxy 127.0.0.1:{scripted.port} {expected}" == info.value.message
