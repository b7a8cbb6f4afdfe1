"""Sends TASKS work tasks of RECORDS records each (optional PAUSE s between records) to the app
in celery_app.py: celery_send.py TASKS RECORDS [PAUSE]. Prints {"event":"sent","tasks":N}."""

import json
import sys

from celery_app import work

tasks, records = int(sys.argv[1]), int(sys.argv[2])
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
for n in range(tasks):
    work.delay(n, records, pause)
print(json.dumps({'event': 'sent', 'tasks': tasks}), flush=True)
