#!/usr/bin/python3
"""A tiny TLS workload for the agent tests: serves TLS on 127.0.0.1:PORT with
CERT/KEY and the CHAIN after the leaf (answering each connection with the serial it serves), writes its pid
to PIDFILE, and reloads the three files on SIGHUP without dropping its listener, as
nginx does. Each reload appends a line to PIDFILE + ".reloads".

    tlsworkload.py PORT CERT KEY CHAIN PIDFILE
"""

import os
import signal
import socket
import ssl
import sys
import threading


def main():
    port, cert, key, chain, pidfile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    full = pidfile + ".fullchain"
    state = {"ctx": None, "serial": None, "pending": False}
    lock = threading.Lock()

    def load():
        from cryptography import x509
        with open(cert, "rb") as f:
            leaf = f.read()
        with open(chain, "rb") as f:
            rest = f.read()
        with open(full, "wb") as f:
            f.write(leaf + rest)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(full, key)
        serial = "%x" % x509.load_pem_x509_certificate(leaf).serial_number
        with lock:
            state["ctx"], state["serial"] = ctx, serial

    def on_hup(signum, frame):
        state["pending"] = True

    load()
    signal.signal(signal.SIGHUP, on_hup)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    ls.settimeout(0.2)
    with open(pidfile + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(pidfile + ".tmp", pidfile)
    while True:
        if state["pending"]:
            state["pending"] = False
            try:
                load()
                with open(pidfile + ".reloads", "a") as f:
                    f.write(state["serial"] + "\n")
            except Exception as e:  # keep serving the old certificate
                sys.stderr.write("reload failed: %s\n" % e)
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        with lock:
            ctx, serial = state["ctx"], state["serial"]
        try:
            conn.settimeout(5)
            tls = ctx.wrap_socket(conn, server_side=True)
            tls.sendall(serial.encode() + b"\n")
            tls.close()
        except (OSError, ssl.SSLError):
            conn.close()


if __name__ == "__main__":
    main()
