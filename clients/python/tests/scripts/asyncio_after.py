"""asyncio.run() with loop.add_signal_handler(SIGTERM), then logging on after the loop has closed
(asyncio sets SIGTERM back to SIG_DFL as it closes, not to the handler it replaced). The handler
gathers for batch_delay 1 s, so what is logged after the loop waits in memory. Logs one record
every 5 ms until SIGTERM is no longer at SIG_DFL (at most 5 s), says ``logged`` with the count,
SIGTERM's handler and the signal wakeup fd, then waits for a signal."""

import asyncio
import json
import logging
import os
import signal
import sys
import time

import logfunnel

log = logging.getLogger('app')
log.addHandler(logfunnel.LogfunnelHandler(endpoint=os.environ['LOGFUNNEL_ENDPOINT'], seq_key='seq', batch_delay=1.0))
log.setLevel(logging.INFO)
log.propagate = False
count = 0


def record(where):
    global count
    log.info(where, extra={'n': count})
    count += 1


async def main():
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    for _ in range(100):
        record('in the loop')
        await asyncio.sleep(0)


record('before the loop')
asyncio.run(main())
deadline = time.monotonic() + 5
while True:
    record('after the loop')
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL or time.monotonic() > deadline:
        break
    time.sleep(0.005)
handler = signal.getsignal(signal.SIGTERM)
wakeup = signal.set_wakeup_fd(-1)  # asyncio's close set -1: the package's watcher takes it again
signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
print(json.dumps({'event': 'logged', 'count': count, 'sigterm': getattr(handler, '__qualname__', str(handler)),
                  'wakeup_fd': wakeup}), flush=True)
time.sleep(60)
sys.exit(3)
