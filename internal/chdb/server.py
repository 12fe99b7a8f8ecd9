"""Serves one chDB session (ClickHouse embedded in this process) to the Go
package beside this file, over stdin/stdout.

Usage: python3 server.py STATE_DIR

Request: one JSON line {"sql": "..."}; the statement runs in the session
whose state lives in STATE_DIR (kept across requests and restarts).
Response: one JSON line, then a payload:
  {"size": N}                            then N bytes: the result in ClickHouse's
                                         Native format (0 bytes for no rows)
  {"error": "...", "code": C, "size": 0}  the statement failed (C: ClickHouse's
                                         error code, 0 when none was given)
Exit status 3: chdb is not installed (pip install chdb-core).
"""

import json
import os
import re
import sys

try:
    import chdb
    from chdb import session
except ImportError as e:  # the Go side turns this into a message naming pip
    sys.stderr.write("chdb is not importable (%s): pip install chdb-core\n" % e)
    sys.exit(3)

CODE = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.S)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: server.py STATE_DIR\n")
        sys.exit(2)
    # The protocol owns the original stdout; anything the engine prints goes
    # to stderr instead of corrupting it.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sess = session.Session(sys.argv[1])
    sys.stderr.write("chdb %s ready\n" % chdb.__version__)
    for line in sys.stdin.buffer:
        req = json.loads(line)
        payload = b""
        try:
            res = sess.query(req["sql"], "Native")
            if res.has_error():
                raise RuntimeError(res.error_message())
            payload = res.bytes() or b""
            head = {"size": len(payload)}
        except Exception as e:  # every engine error goes back to the caller
            msg = str(e).strip()
            m = CODE.match(msg)
            head = {"error": m.group(2) if m else msg, "code": int(m.group(1)) if m else 0, "size": 0}
        out.write(json.dumps(head).encode() + b"\n")
        out.write(payload)
        out.flush()
    sess.close()


if __name__ == "__main__":
    main()
