"""The balancer's round robin: every backend once per connection, starting one further each time."""

import asyncio

from chaos.balancer import Address, Rule, _connect, order

A, B, C = Address("127.0.0.1", 1), Address("127.0.0.1", 2), Address("127.0.0.1", 3)


def test_each_connection_starts_one_node_further_and_falls_back_to_the_others():
    assert order((A, B, C), 0) == [A, B, C]
    assert order((A, B, C), 1) == [B, C, A]
    assert order((A, B, C), 5) == [C, A, B]


def test_a_rule_parses_its_listen_address_and_backends():
    rule = Rule.parse("127.0.0.1:9000=127.0.0.1:1,127.0.0.1:2")
    assert rule.listen == Address("127.0.0.1", 9000)
    assert rule.backends == (Address("127.0.0.1", 1), Address("127.0.0.1", 2))


def test_a_node_that_refuses_is_skipped_for_the_next_one():
    async def scenario() -> bool:
        server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
        live = Address("127.0.0.1", server.sockets[0].getsockname()[1])
        refusing = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
        dead = Address("127.0.0.1", refusing.sockets[0].getsockname()[1])
        refusing.close()
        await refusing.wait_closed()
        connected = await _connect([dead, live])
        server.close()
        if connected is None:
            return False
        connected[1].close()
        return connected[1].get_extra_info("peername")[1] == live.port

    assert asyncio.run(scenario())
