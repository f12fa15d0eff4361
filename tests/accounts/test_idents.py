"""Ident parsing and normalisation (SPEC §2): IP lists, logins, ANIs, tech prefixes, tags, proxies."""

import pytest

from panel.accounts import idents


def test_ip_list_keeps_order_and_normalises():
    """Addresses and networks separated by `;` (spaces and commas tolerated), stored canonical, in order."""
    text, networks = idents.normalise_ident(
        "ip", " 10.0.0.0/24 ;200.200.200.208/28; 198.51.100.7 ,2001:DB8::/32"
    )
    assert text == "10.0.0.0/24; 200.200.200.208/28; 198.51.100.7; 2001:db8::/32"
    assert [idents.canonical(n) for n in networks] == [
        "10.0.0.0/24",
        "200.200.200.208/28",
        "198.51.100.7/32",
        "2001:db8::/32",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.1/24", "10.0.0.1/24 has host bits set; the network is 10.0.0.0/24."),
        ("10.0.0.256", "10.0.0.256 is not an IPv4 or IPv6 address."),
        ("10.0.0.0/33", "10.0.0.0/33 is not an IPv4 or IPv6 network"),
        ("gateway.example", "gateway.example is not an IPv4 or IPv6 address."),
        ("198.51.100.7; 198.51.100.7", "198.51.100.7 is listed twice."),
        ("198.51.100.7/32; 198.51.100.7", "198.51.100.7 is listed twice."),
        ("10.0.0.0/24; 10.0.0.5", "10.0.0.5 is inside 10.0.0.0/24, which is listed already."),
        ("10.0.0.128/25; 10.0.0.0/24", "10.0.0.128/25 is inside 10.0.0.0/24; list only one of them."),
        (" ; ", "Enter at least one IP address or CIDR network."),
    ],
)
def test_bad_ip_lists_are_refused_with_the_reason(value, message):
    """A bad address, host bits set, a duplicate or a nested network is an error that says which."""
    with pytest.raises(idents.IdentError) as error:
        idents.normalise_ident("ip", value)
    assert message in str(error.value)


def test_ipv4_and_ipv6_never_nest():
    """Networks of different families are independent."""
    text, _ = idents.normalise_ident("ip", "0.0.0.0/0; ::/0")
    assert text == "0.0.0.0/0; ::/0"


def test_login_and_ani():
    """A login is kept as typed (no spaces); an ANI is digits and loses a leading +."""
    assert idents.normalise_ident("name", "  Trunk.01@pbx ") == ("Trunk.01@pbx", [])
    assert idents.normalise_ident("ani", "+442071234567") == ("442071234567", [])
    with pytest.raises(idents.IdentError, match="no spaces"):
        idents.normalise_ident("name", "two words")
    with pytest.raises(idents.IdentError, match="digits only"):
        idents.normalise_ident("ani", "44-20")
    with pytest.raises(idents.IdentError, match="Enter the login"):
        idents.normalise_ident("name", "")


@pytest.mark.parametrize(
    ("value", "ok"), [("", True), ("123", True), ("99#", True), ("#", False), ("1#2", False), ("a1", False)]
)
def test_tech_prefix(value, ok):
    """Digits, optionally ending in #, or empty."""
    if ok:
        assert idents.normalise_tech_prefix(value) == value
    else:
        with pytest.raises(idents.IdentError):
            idents.normalise_tech_prefix(value)


def test_tags_are_words_listed_once():
    """Spaces or commas separate tags; repeats go; odd characters are refused."""
    assert idents.normalise_tags("gold, wholesale gold  cli") == "gold wholesale cli"
    with pytest.raises(idents.IdentError, match="is not a tag"):
        idents.normalise_tags("gold <b>")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("sbc.example.net", True),
        ("sbc.example.net:5080", True),
        ("203.0.113.9:5060", True),
        ("[2001:db8::1]:5060", True),
        ("2001:db8::1", False),
        ("host:0", False),
        ("host:99999", False),
        ("host:²", False),  # a Unicode digit is not a port (int() refuses it)
        ("bad_host!", False),
    ],
)
def test_proxy(value, ok):
    """host[:port] with bracketed IPv6."""
    if ok:
        assert idents.normalise_proxy(value) == value
    else:
        with pytest.raises(idents.IdentError):
            idents.normalise_proxy(value)


def test_terminator_address_is_first_single_ip_or_proxy():
    """The address calls go to: the proxy, else the first ident entry that is one address."""
    _, networks = idents.normalise_ident("ip", "10.0.0.0/24; 198.51.100.7; 198.51.100.8")
    assert idents.terminator_address(networks, "") == "198.51.100.7"
    assert idents.terminator_address(networks, "sbc.example.net") == "sbc.example.net"
    _, only_network = idents.normalise_ident("ip", "10.0.0.0/24")
    assert idents.terminator_address(only_network, "") == ""


def test_gateway_sets_overlap():
    """An empty set overlaps every set; otherwise a shared gateway is needed."""
    assert idents.gateways_overlap([], [1])
    assert idents.gateways_overlap([2], [])
    assert idents.gateways_overlap([1, 2], [2, 3])
    assert not idents.gateways_overlap([1], [2])
