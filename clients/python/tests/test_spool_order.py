"""One process configures logging again and again while the writer is away: each configuration's
handler is a producer of its own, its records in the spool under its own producer id. The writer
takes a process's producers in the order they were made (the preamble's ``made``), so the file
has the process's records in the order they were logged. Before, files went by producer id,
and ids are random: with 6 configurations, 719 orders in 720 were wrong."""

import json
import os
import struct

from conftest import assert_clean, assert_unreached_reported, verify

CONFIGURATIONS = 6
N = 200

# Each configuration with other handler options ("a client made with options X"); dictConfig
# closes the handler before (its records go to the spool: no writer answers) and makes a new one.
RECONFIGURE = '''import json, logging, logging.config, sys
endpoint, configurations, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
variants = [{}, {'max_batch_bytes': 4096}, {'on_full': 'spool', 'high_water_mark': 65536, 'max_frame_bytes': 65536, 'max_batch_bytes': 16384},
            {'spool_after': 0.05}]
for k in range(configurations):
    logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False, 'handlers': {'funnel': {
        'class': 'logfunnel.LogfunnelHandler', 'endpoint': endpoint, 'seq_key': 'seq', 'close_timeout': 20,
        **variants[k % len(variants)]}}, 'root': {'handlers': ['funnel'], 'level': 'INFO'}})
    log = logging.getLogger('cfg')
    for i in range(n):
        log.info('configuration %d record %d', k, i)
logging.shutdown()
print(json.dumps({'event': 'done'}), flush=True)
'''


def made_of(path):
    """The ``made`` of a spool file's preamble."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:4] == b'LFS\x01', path
    (length,) = struct.unpack('>I', data[4:8])
    return json.loads(data[8:8 + length]).get('made')


def test_successive_configurations_spooled_come_back_in_the_order_logged(writer_factory, run_code):
    writer = writer_factory(start=False)
    p = run_code(RECONFIGURE, writer.endpoint, str(CONFIGURATIONS), str(N))
    p.wait_event('done', timeout=120)
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, CONFIGURATIONS)
    # One producer per configuration, each segment stamped with when its producer was made.
    spool = os.path.join(writer.dir, 'w.sock.spool')
    made = {name.split('-')[0]: made_of(os.path.join(spool, name)) for name in writer.spool_files()}
    assert len(made) == CONFIGURATIONS and all(isinstance(m, str) and m.isdigit() for m in made.values()), made

    total = CONFIGURATIONS * N
    writer.start()
    writer.wait_for_lines(total)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == total and summary['duplicates'] == 0
    with open(writer.file, encoding='utf-8') as f:
        messages = [json.loads(line)['msg'] for line in f]
    # Which configuration came in which order, then every line.
    runs = [int(m.split()[1]) for m in messages]
    assert [k for i, k in enumerate(runs) if i == 0 or runs[i - 1] != k] == list(range(CONFIGURATIONS))
    assert messages == ['configuration %d record %d' % (k, i) for k in range(CONFIGURATIONS) for i in range(N)]
    # The process's seq (one count across its handlers): none lost, twice or out of order.
    assert_clean(verify(writer.file, '--expect', str(total)), total, 1)
