"""Which addresses a server-side fetch may reach: the server-side request forgery (SSRF) rules.

A URL a client hands the gateway (a page to fetch, a PDF by URL) must not make the gateway reach what
only it can reach: loopback, private networks, link-local addresses (cloud metadata services at
169.254.169.254 and fd00:ec2::254), and the like. The check is on addresses, after DNS resolution
(web/fetch.py connects to the very address checked here, so a name that resolves differently the second
time, DNS rebinding, gains nothing), and on every redirect.

Hosts written as IPv4 numbers in the legacy spellings that resolvers accept (``2130706433``,
``0177.0.0.1``, ``0x7f.1``, ``127.1``) are read as those addresses, never passed to DNS.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges Python's is_global misses or counts as global: CGNAT (also not is_private), multicast, and the
# IPv6 forms that embed an IPv4 address (checked through the embedded address below).
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in the inet_aton spellings (1 to 4 parts, each decimal, 0-octal or 0x-hex, the
    last part filling the remaining bytes), or None when ``host`` is not one."""
    parts = host.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                value = int(part[2:] or "0", 16)
            elif len(part) > 1 and part.startswith("0"):
                value = int(part[1:], 8)
            else:
                value = int(part, 10) if part.isdigit() else -1
        except ValueError:
            return None
        if value < 0:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for i, v in enumerate(head):
        number += v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def parse_ip(host: str) -> IPAddress | None:
    """The address a URL's host names literally (any IPv4 spelling, IPv6 with or without brackets and
    zone), or None for a DNS name."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return parse_ipv4_number(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why a fetch may not reach ``ip`` (a short phrase), or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            if why := refusal(embedded):
                return f"{why} (embedded in {ip})"
            if ip.ipv4_mapped is not None or ip in _NAT64[0]:  # reaches that public IPv4 address
                return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (CGNAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None
