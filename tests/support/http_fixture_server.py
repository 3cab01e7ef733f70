#!/usr/bin/python3
"""A misbehaving HTTP server for tests/test_fetch.c (standard library only).

    http_fixture_server.py PORT [DIR]   serves on 127.0.0.1:PORT until killed

Routes (bodies are bytes i % 251, so a test can predict their hash):
    /ok/N            200, N bytes, with Content-Length
    /nolength/N      200, N bytes, no Content-Length (ends when the connection closes)
    /declared/N      200 claiming Content-Length N, then sends 10 bytes and closes
    /hang            200, Content-Length 1000, 10 bytes, then nothing for 60 s
    /status/CODE     that status, a short body
    /flaky/KEY/K     503 for the first K requests of KEY, then /ok/64
    /loop            302 to itself
    /hops/K          302 to /hops/K-1 ... /hops/0 is /ok/32
    /away            302 to http://localhost:PORT/ok/16 (another host name)
    /ftp             302 to ftp://127.0.0.1/x
    /file/NAME       200, the bytes of DIR/NAME (a plain name, no folders), 404 without it
"""
import http.server
import os
import sys
import threading
import time

COUNTS = {}
FILES = sys.argv[2] if len(sys.argv) > 2 else None
LOCK = threading.Lock()


def body(n):
    return bytes(i % 251 for i in range(n))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("http_fixture_server: " + (fmt % args) + "\n")

    def send_body(self, code, data, length=True):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        if length:
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        port = self.server.server_address[1]
        try:
            if parts[0] == "ok":
                self.send_body(200, body(int(parts[1])))
            elif parts[0] == "nolength":
                self.send_body(200, body(int(parts[1])), length=False)
            elif parts[0] == "declared":
                self.send_response(200)
                self.send_header("Content-Length", parts[1])
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body(10))
                self.close_connection = True
            elif parts[0] == "hang":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(body(10))
                self.wfile.flush()
                time.sleep(60)
            elif parts[0] == "status":
                self.send_body(int(parts[1]), b"status page\n")
            elif parts[0] == "flaky":
                with LOCK:
                    seen = COUNTS.get(parts[1], 0)
                    COUNTS[parts[1]] = seen + 1
                if seen < int(parts[2]):
                    self.send_body(503, b"try later\n")
                else:
                    self.send_body(200, body(64))
            elif parts[0] == "loop":
                self.redirect("/loop")
            elif parts[0] == "hops":
                k = int(parts[1])
                self.redirect("/hops/%d" % (k - 1) if k > 0 else "/ok/32")
            elif parts[0] == "away":
                self.redirect("http://localhost:%d/ok/16" % port)
            elif parts[0] == "ftp":
                self.redirect("ftp://127.0.0.1/x")
            elif parts[0] == "file" and len(parts) == 2 and FILES and parts[1] not in ("", ".", ".."):
                try:
                    with open(os.path.join(FILES, parts[1]), "rb") as f:
                        self.send_body(200, f.read())
                except OSError:
                    self.send_body(404, b"no such file\n")
            else:
                self.send_body(404, b"no such route\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
