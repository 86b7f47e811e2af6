"""Test documents made on the spot with ghostscript, and a tiny HTTP server on loopback that serves them."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

TWO_PAGE_POSTSCRIPT = b"""%!PS
/Helvetica findfont 28 scalefont setfont
72 720 moveto (Fax platform test - page one) show
72 680 moveto (The quick brown fox jumps over the lazy dog 0123456789) show
4 setlinewidth 72 200 moveto 540 600 lineto stroke
100 100 200 150 rectfill
showpage
/Times-Roman findfont 40 scalefont setfont
72 720 moveto (Page two: different content) show
306 396 150 0 360 arc stroke
0 1 20 { 30 mul 72 add 300 moveto 0 -200 rlineto stroke } for
showpage
"""


def make_pdf(path: Path, postscript: bytes = TWO_PAGE_POSTSCRIPT) -> Path:
    """A PDF made by ghostscript from PostScript (A4)."""
    subprocess.run(
        [
            "gs",
            "-q",
            "-dSAFER",
            "-dBATCH",
            "-dNOPAUSE",
            "-sDEVICE=pdfwrite",
            "-sPAPERSIZE=a4",
            f"-sOutputFile={path}",
            "-",
        ],
        input=postscript,
        check=True,
        capture_output=True,
    )
    return path


@contextlib.contextmanager
def serve_documents(files: dict[str, bytes]) -> Iterator[str]:
    """Serve ``files`` (path -> body) on 127.0.0.1; anything else is 404. Yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class SlowDocumentServer:
    """A document server on 127.0.0.1 that answers every request after ``delay_s`` (a slow remote site), serving
    ``files`` (path -> body; anything else is 404) and noting each path requested, in order, as the request
    arrives (before the delay)."""

    def __init__(self, files: dict[str, bytes], delay_s: float) -> None:
        self.files = files
        self.delay_s = delay_s
        self.requested: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requested.append(self.path)
                time.sleep(server.delay_s)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def wait_for_request(self, path: str, seconds: float = 30) -> None:
        """Block until ``path`` has been requested (the fetch has begun)."""
        deadline = time.monotonic() + seconds
        while path not in self.requested:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} was not requested within {seconds:.0f} s")
            time.sleep(0.02)

    def __enter__(self) -> SlowDocumentServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
