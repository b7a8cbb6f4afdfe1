"""A Celery app whose prefork worker logs through LogfunnelHandler, configured the way Celery's
docs show: a ``setup_logging`` receiver calling dictConfig (Celery then leaves logging alone).
The broker is kombu's filesystem transport in CELERY_DIR (no daemon). Tasks log to the ``tasks``
logger (propagating to the root, where the handler is); Celery's and kombu's own loggers go to stderr only,
so the file holds the tasks' records and nothing else.

Environment: LOGFUNNEL_ENDPOINT, CELERY_DIR.
"""

import logging
import logging.config
import os
import signal
import time

from celery import Celery
from celery.signals import setup_logging

DIR = os.environ['CELERY_DIR']
for sub in ('queue', 'processed', 'progress'):
    os.makedirs(os.path.join(DIR, sub), exist_ok=True)

app = Celery('celery_app')
app.conf.update(
    broker_url='filesystem://',
    broker_transport_options={'data_folder_in': os.path.join(DIR, 'queue'),
                              'data_folder_out': os.path.join(DIR, 'queue'),
                              'data_folder_processed': os.path.join(DIR, 'processed'),
                              'polling_interval': 0.05},
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
)


@setup_logging.connect
def configure_logging(**_kwargs):
    logging.config.dictConfig({
        'version': 1,
        'disable_existing_loggers': False,
        'formatters': {'plain': {'format': '[%(asctime)s: %(levelname)s/%(processName)s] %(message)s'}},
        'handlers': {
            'funnel': {'class': 'logfunnel.LogfunnelHandler', 'seq_key': 'seq',
                       'endpoint': os.environ['LOGFUNNEL_ENDPOINT']},
            'console': {'class': 'logging.StreamHandler', 'formatter': 'plain'},
        },
        'loggers': {name: {'handlers': ['console'], 'level': 'INFO', 'propagate': False} for name in ('celery', 'kombu')},
        'root': {'handlers': ['funnel'], 'level': 'INFO'},
    })


log = logging.getLogger('tasks')


@app.task
def work(task, records, pause=0.0):
    """Logs ``records`` records. With ``pause`` (s) between them, it writes a byte to
    CELERY_DIR/progress/<task> after each (with the fatal signals blocked around the pair, so the
    count there is exactly what was logged when a shutdown ends the process)."""
    progress = os.open(os.path.join(DIR, 'progress', str(task)), os.O_WRONLY | os.O_CREAT | os.O_APPEND) if pause else -1
    try:
        for i in range(records):
            if pause:
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGQUIT, signal.SIGINT})
                log.info('record %d of task %d', i, task, extra={'task': task, 'i': i})
                os.write(progress, b'.')
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                time.sleep(pause)
            else:
                log.info('record %d of task %d', i, task, extra={'task': task, 'i': i})
    finally:
        if progress >= 0:
            os.close(progress)
    return records
