#!/usr/bin/env bash
# check_peer.sh - the client talks only to a daemon of its own user (or root).
#
# Another user (nobody) listens on a socket where a client would look; the client must refuse
# before sending anything: no argv, no environment leaves the process. Needs root (to become
# nobody); as another user it checks nothing and says so.
#
# Usage: bash tests/check_peer.sh BUILD_DIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
rx_test_init check_peer "${1:-}"
if [ "$(id -u)" != 0 ]; then
    rx_test_skip "needs root to run a listener as another user"
fi
chmod 0755 "$tmp"

# A listener as nobody that records whatever it receives and answers like a daemon would.
install -d -o nobody -m 0755 "$tmp/evil"
setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); os.chmod(path, 0o777); s.listen(8)
while True:
    c, _ = s.accept()
    data = c.recv(65536)
    with open(log, "ab") as f:
        f.write(data)
    c.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 86\r\n\r\n"
              b"{\"id\":7,\"status\":\"QUEUED\",\"n_tasks\":1,\"tasks\":{\"pending\":1,\"running\":0,\"ok\":0,\"failed\":0}}")
    c.close()
' "$tmp/evil/rxjobd.sock" "$tmp/evil/received" &
rx_pids+=($!) # the listener
for _ in $(seq 100); do [ -S "$tmp/evil/rxjobd.sock" ] && break; sleep 0.05; done

set +e
SECRET_TOKEN=hunter2 "$build/rxjob" --url "unix:$tmp/evil/rxjobd.sock" exec -- sh -c 'echo secret' \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
if [ "$rc" = 3 ] && grep -q "another user" "$tmp/err"; then
    ok "the client refuses a daemon of another user (exit 3): $(cat "$tmp/err")"
else
    bad "exit $rc; stdout: $(cat "$tmp/out"); stderr: $(cat "$tmp/err")"
fi
if [ ! -s "$tmp/evil/received" ]; then
    ok "nothing was sent to it"
else
    bad "the listener received: $(head -c 300 "$tmp/evil/received")"
fi
rx_test_end
