"""The coalescing transport: a response's head and body leave in one write, nothing is lost
or reordered, and what it holds leaves before the loop waits (or the connection closes)."""

from __future__ import annotations

import asyncio
import socket

from modelport.serving.http.protocol import CoalescingTransport


async def _pair() -> tuple[CoalescingTransport, asyncio.Transport, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    theirs.setblocking(False)
    return CoalescingTransport(transport, loop), transport, theirs


async def _read(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        if not chunk:
            break
        data += chunk
    return data


def test_a_head_and_its_body_leave_together_in_order() -> None:
    async def scenario() -> None:
        transport, _, peer = await _pair()
        transport.write(b"HEAD\r\n\r\n")
        assert transport.get_write_buffer_size() == 8  # held, not sent yet
        transport.write(b"body")
        transport.write(b"next head")  # held until the end of this loop pass
        transport.writelines([b" and ", b"more"])
        assert await _read(peer, 30) == b"HEAD\r\n\r\nbodynext head and more"
        transport.close()
        peer.close()

    asyncio.run(scenario())


def test_a_lone_write_leaves_at_the_end_of_the_loop_pass() -> None:
    async def scenario() -> None:
        transport, _, peer = await _pair()
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert await _read(peer, 25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        transport.close()
        peer.close()

    asyncio.run(scenario())


def test_close_and_eof_send_what_is_held_first_and_abort_drops_it() -> None:
    async def scenario() -> None:
        transport, _, peer = await _pair()
        transport.write(b"last words")
        transport.close()
        assert transport.is_closing()
        assert await _read(peer, 100) == b"last words"
        peer.close()

        transport, _, peer = await _pair()
        transport.write(b"then eof")
        assert transport.can_write_eof()
        transport.write_eof()
        assert await _read(peer, 100) == b"then eof"
        transport.close()
        peer.close()

        transport, raw, peer = await _pair()
        transport.write(b"never sent")
        transport.abort()
        assert raw.is_closing()
        assert await _read(peer, 100) == b""
        peer.close()

    asyncio.run(scenario())
