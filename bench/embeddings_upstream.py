"""The embeddings upstream for bench.embeddings: OpenAI's `POST /v1/embeddings` from bare asyncio.

Every input gets the same unit vector of `--dims` floats (eight significant digits, as OpenAI
sends them), encoded once at start; a request costs a JSON decode of its body, a word count for the
usage, and one join, so the upstream's core is not what the gateway's figures measure (the test fake,
FakeOpenAIEmbed, computes each vector and runs on aiohttp: built for scripted faults, not for speed).

    python -m bench.embeddings_upstream --port 0 --dims 1536
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal

import msgspec

from bench.echo import BAD_REQUEST, Echo

READY = "bench embeddings upstream listening on"
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"


class _Request(msgspec.Struct):
    input: str | list[str]
    model: str = ""


decode = msgspec.json.Decoder(_Request).decode


def unit_vector(dims: int) -> bytes:
    rng = random.Random(dims)
    v = [rng.gauss(0, 1) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in v))
    # Eight significant digits, as OpenAI writes its float32 values (-0.0069292835).
    return msgspec.json.encode([float(f"{x / norm:.8g}") for x in v])


class Embeddings(Echo):
    """One keep-alive client connection: bench.echo's, answering embeddings."""

    item = b""  # one data item, with %d for its index

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST" or not self.url.partition(b"?")[0].endswith(b"/embeddings"):
            self.transport.write(NOT_FOUND)
            return
        try:
            request = decode(b"".join(self.body))
        except msgspec.DecodeError:
            self.transport.write(BAD_REQUEST)
            self.transport.close()
            return
        texts = [request.input] if isinstance(request.input, str) else request.input
        tokens = sum(max(1, len(t.split())) for t in texts)
        data = b",".join(self.item % i for i in range(len(texts)))
        usage = b'{"prompt_tokens":%d,"total_tokens":%d}' % (tokens, tokens)
        body = b'{"object":"list","data":[%b],"model":%b,"usage":%b}' % (
            data,
            msgspec.json.encode(request.model),
            usage,
        )
        self.transport.write(JSON_HEAD % len(body) + body)


async def serve(port: int, dims: int) -> None:
    Embeddings.item = b'{"object":"embedding","index":%d,"embedding":' + unit_vector(dims).replace(b"%", b"%%") + b"}"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Embeddings, "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"{READY} http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embeddings_upstream")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dims", type=int, default=1536)
    args = parser.parse_args()
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.port, args.dims))


if __name__ == "__main__":
    main()
