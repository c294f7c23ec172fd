#!/usr/bin/python3
"""Helpers of tests/e2e/postfix.sh (standard library only).

send FROM RCPT FILE        submit FILE over SMTP to 127.0.0.1:25
refused RCPT               exit 0 if the server refuses RCPT TO:<RCPT>, print the answer
replies DIR MBOX...        every mail of the mbox files: its body to DIR/NN.txt and a
                           tab-separated line: file, mailbox, In-Reply-To, Subject,
                           result, client-trid, server-trid, handle, avail, codes
queue                      `postqueue -j` on stdin -> "queue_id queue_name recipient"
lock DB RELEASE MAXSEC     hold SQLite's write lock on DB until the file RELEASE
                           exists (at most MAXSEC seconds); prints "locked" once held
journal DB                 the journal: server-trid, kind, registrar, client-trid, result
outbox DB                  the outbox: server-trid, recipient, delivered (or "-")
"""

import json
import mailbox
import os
import smtplib
import sqlite3
import sys
import time


def send(sender, rcpt, path):
    with open(path, "rb") as f:
        data = f.read()
    with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
        s.sendmail(sender, [rcpt], data)


def refused(rcpt):
    with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
        s.ehlo("e2e.test")
        s.mail("probe@registrars.test")
        code, msg = s.rcpt(rcpt)
        print(code, msg.decode("ascii", "replace"))
        s.rset()
    return 0 if code >= 400 else 1


def machine_block(text):
    fields = {}
    codes = []
    inside = False
    for line in text.splitlines():
        if line.startswith("%% REPLY"):
            inside = True
        elif line.startswith("%% END"):
            break
        elif inside and ":" in line:
            key, value = line.split(":", 1)
            value = value.strip()
            if key in ("error", "warning", "info"):
                codes.append(value.split(" ", 1)[0])
            else:
                fields.setdefault(key, value)
    return fields, codes


def replies(outdir, mboxes):
    n = 0
    for path in mboxes:
        if not os.path.exists(path):
            continue
        for msg in mailbox.mbox(path, create=False):
            n += 1
            body = msg.get_payload(decode=True) or b""
            name = os.path.join(outdir, "%02d.txt" % n)
            with open(name, "wb") as f:
                f.write(body)
            fields, codes = machine_block(body.decode("ascii", "replace"))
            row = [
                name,
                os.path.basename(path),
                msg.get("In-Reply-To", "-"),
                msg.get("Subject", "-"),
                fields.get("result", "-"),
                fields.get("client-trid", "-"),
                fields.get("server-trid", "-"),
                fields.get("handle", "-"),
                fields.get("avail", "-"),
                ",".join(codes) or "-",
            ]
            print("\t".join(row))


def queue():
    for line in sys.stdin:
        if not line.strip():
            continue
        entry = json.loads(line)
        for r in entry.get("recipients", []):
            print(entry["queue_id"], entry["queue_name"], r["address"])


def lock(db, release, maxsec):
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    end = time.monotonic() + float(maxsec)
    while not os.path.exists(release) and time.monotonic() < end:
        time.sleep(0.2)
    conn.execute("ROLLBACK")
    conn.close()


def rows(db, sql):
    conn = sqlite3.connect(db, timeout=30)
    for row in conn.execute(sql):
        print("\t".join("-" if v is None else str(v) for v in row))
    conn.close()


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "send":
        send(*args)
    elif cmd == "refused":
        return refused(*args)
    elif cmd == "replies":
        replies(args[0], args[1:])
    elif cmd == "queue":
        queue()
    elif cmd == "lock":
        lock(*args)
    elif cmd == "journal":
        rows(args[0], "SELECT server_trid, kind, registrar_id, client_trid, result"
             " FROM journal ORDER BY server_trid")
    elif cmd == "outbox":
        rows(args[0], "SELECT server_trid, recipient, delivered FROM outbox ORDER BY id")
    else:
        print(__doc__, file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
