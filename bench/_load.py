"""Helper of bench/faults.py: drive apps at a fixed rate from a process of its own (the bench's
receivers never share a GIL with the client). Each tick sends the same request to every app, in a
random order, so a faulted app and its healthy control see the same load and the same machine noise.
Runs until stdin closes; prints [app index, start (monotonic), seconds, status] rows as JSON."""

from __future__ import annotations

import json
import random
import sys
import threading
import time

import httpx


def main(rate: float, urls: list[str]) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    clients = [httpx.Client(base_url=url, timeout=10.0) for url in urls]
    interval, n, rows = 1.0 / rate, 0, []
    next_at = time.perf_counter()
    while not stop.is_set():
        path = f"/boom/{n}" if n % 2 else f"/ok/{n}"
        order = list(range(len(clients)))
        random.shuffle(order)
        for i in order:
            started, t0 = time.monotonic(), time.perf_counter()
            try:
                status = clients[i].get(path).status_code
            except httpx.HTTPError:
                status = 0  # the app is restarting (bench scenario) or gone
            rows.append((i, started, time.perf_counter() - t0, status))
        n += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    for client in clients:
        client.close()
    sys.stdout.write(json.dumps(rows))


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2:])
