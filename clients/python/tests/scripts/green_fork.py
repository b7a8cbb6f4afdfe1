"""os.fork() in a threading.Thread of a program patched by gevent or eventlet (a green thread):
in the child that green thread returns at once, and the main one goes on, logging 100 records
5 ms apart, then says ``child end``; the parent waits for it and says ``child ended``. argv:
endpoint, 'gevent' or 'eventlet'."""

import sys

endpoint, library = sys.argv[1], sys.argv[2]
from green_patch import green_logger, patch  # noqa: E402

patch(library)

import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

log = green_logger(endpoint)
log.info('parent')
forked = []


def work():
    pid = os.fork()
    if pid == 0:
        forked.append(True)
        return
    _, status = os.waitpid(pid, 0)
    print(json.dumps({'event': 'child ended', 'status': status}), flush=True)


thread = threading.Thread(target=work)
thread.start()
thread.join()
if forked:
    for n in range(100):
        log.info('child', extra={'n': n})
        time.sleep(0.005)
    print(json.dumps({'event': 'child end', 'pid': os.getpid()}), flush=True)
