"""A spool directory the handler refuses (writable by others, or another user's: a producer run
as another user than the writer's, facing its spool): the records it cannot keep are reported
as lost, with the reason, and nothing raises into the application. Before, the refusal
(SpoolError, not an OSError) escaped the spool's error handling: the sender thread failed five
times over with LOGFUNNEL_ERR_SENDER_FAILED ('it starts again'), died with an uncaught exception,
and close() raised the SpoolError into the application. A spool failure is said once while it
repeats, not once per batch copied."""

import json
import os

REFUSED = '''import json, logging, os, sys
import logfunnel
endpoint, spool_dir = sys.argv[1], sys.argv[2]
h = logfunnel.LogfunnelHandler(endpoint=endpoint, spool_dir=spool_dir, seq_key='seq', close_timeout=1.0)
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
for seq in range(100):
    log.info('kept nowhere', extra={'seq': seq})
raised = None
try:
    h.close()
except BaseException as err:
    raised = '%s: %s' % (type(err).__name__, err)
print(json.dumps({'event': 'done', 'raised': raised, 'stats': h.client.stats}), flush=True)
'''


def test_a_refused_spool_directory_is_reported_and_raises_nothing(run_code, tmp_path):
    spool = tmp_path / 'spool'
    spool.mkdir()
    os.chmod(str(spool), 0o777)  # writable by others: refused (LOGFUNNEL_ERR_UNSAFE_ENDPOINT)
    p = run_code(REFUSED, 'ipc://%s' % (tmp_path / 'none.sock'), str(spool))
    done = p.wait_event('done', timeout=60)
    assert p.wait() == 0, p.stderr
    assert done['raised'] is None, done
    assert done['stats']['lost'] == 100 and done['stats']['spooled_records'] == 0, done
    assert 'Exception in thread' not in p.stderr and 'LOGFUNNEL_ERR_SENDER_FAILED' not in p.stderr, p.stderr
    said = [line for line in p.stderr.splitlines() if 'LOGFUNNEL_ERR_UNSAFE_ENDPOINT' in line]
    # Said once, not once per batch copied while the writer is away (8 lines in that second before).
    assert len(said) == 1 and str(spool) in said[0], p.stderr
    assert os.listdir(str(spool)) == []
