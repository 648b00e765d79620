#!/usr/bin/env python3
"""Open N keep-alive client connections to 127.0.0.1:PORT, send --requests GETs on each, then hold them idle.

Used by bench/proxy/run to measure a proxy's memory per idle client connection (one request per connection), and
to warm a freshly started proxy up before that (a few connections of many requests, held for --hold 0 seconds).
Bounded: exactly N connections, each makes exactly --requests requests, and the process exits after --hold
seconds at most. Prints "ready OPENED FAILED" on stdout once every connection has had its responses, then holds.
"""
import argparse
import asyncio
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle-conns\r\n\r\n"


async def one(port, held, requests, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    for _ in range(requests):
        writer.write(REQUEST)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await asyncio.wait_for(reader.readexactly(length), timeout)
    held.append(writer)  # keep the connection open and idle


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--requests", type=int, default=1, help="requests sent on each connection, one at a time")
    p.add_argument("--batch", type=int, default=250, help="connections opened concurrently")
    p.add_argument("--hold", type=float, default=60.0, help="seconds to hold them before exiting")
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args()
    held, failed = [], 0
    for start in range(0, a.count, a.batch):
        n = min(a.batch, a.count - start)
        results = await asyncio.gather(*(one(a.port, held, a.requests, a.timeout) for _ in range(n)),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                failed += 1
                if failed <= 3:
                    print(f"connection failed: {r!r}", file=sys.stderr)
    print(f"ready {len(held)} {failed}", flush=True)
    await asyncio.sleep(a.hold)
    for w in held:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
