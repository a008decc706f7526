"""Test servers on 127.0.0.1: a scripted OpenAI-compatible teacher and a fault-injecting proxy."""
from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Background:
    """A ThreadingHTTPServer running in a daemon thread; `url` is its /v1 base."""

    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def scripted_teacher(ignore_n: bool = True) -> Background:
    """An OpenAI-compatible (completions and chat) server answering questions by rule.

    Stage 1 states the sum of the question's numbers; stage 2 repeats it. Like llama.cpp's
    server it answers n>1 with one choice unless `ignore_n` is False. The seed shows up in
    the text, so distinct seeds give distinct rationales.
    """
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self._send({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({**body, "authorization": self.headers.get("Authorization", "")})
            chat = "messages" in body
            prompt = body["messages"][-1]["content"] if chat else body["prompt"]
            n = 1 if ignore_n else body.get("n", 1)
            if prompt.rstrip().endswith(("is", "is:")):  # stage 2: the answer trigger
                text = " " + re.findall(r"so (\d+)\.", prompt)[-1] + "."
            else:
                question = prompt.split("Q: ", 1)[1].split("\n")[0]
                numbers = [int(x) for x in re.findall(r"\d+", question)]
                text = f" Adding what we know (seed {body.get('seed')}), so {sum(numbers)}."
            usage = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
            if chat:
                choices = [{"index": i, "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop"} for i in range(n)]
                return self._send({"id": "x", "object": "chat.completion", "created": 0,
                                   "model": body["model"], "choices": choices, "usage": usage})
            self._send({"id": "x", "object": "text_completion", "model": body["model"],
                        "created": 0, "choices": [{"index": i, "text": text, "finish_reason": "stop",
                                                   "logprobs": None} for i in range(n)],
                        "usage": usage})

        def _send(self, payload):
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = Background(Handler)
    server.seen = seen
    return server


class FaultProxy:
    """Forwards to `upstream` (a /v1 base URL), injecting faults on POSTs by schedule.

    `faults` maps the 1-based number of a POST to one of: 400, 404, 429, 500, "stall" (answer only
    after `stall` seconds), "truncate" (half a JSON body), "drop" (close the connection);
    `always` injects that fault on every POST whose body contains `always_on`.
    """

    def __init__(self, upstream: str, faults: dict[int, object] | None = None,
                 stall: float = 5.0, always: object = None, always_on: str = ""):
        self.faults, self.stall, self.always, self.always_on = faults or {}, stall, always, always_on
        self.posts, self.injected = 0, []
        self.lock = threading.Lock()
        host, port = re.match(r"http://([^:/]+):(\d+)", upstream).groups()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    proxy.posts += 1
                    fault = proxy.faults.get(proxy.posts)
                    if proxy.always is not None and proxy.always_on.encode() in body:
                        fault = proxy.always
                    if fault is not None:
                        proxy.injected.append(fault)
                if fault in (400, 404, 429, 500):
                    return self._reply(fault, b'{"error": {"message": "injected"}}')
                if fault == "drop":
                    self.close_connection = True
                    return self.connection.shutdown(socket.SHUT_RDWR)
                if fault == "stall":
                    time.sleep(proxy.stall)
                self._forward(body, truncate=fault == "truncate")

            def _forward(self, body, truncate=False):
                upstream_conn = http.client.HTTPConnection(host, int(port), timeout=600)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream_conn.request(self.command, self.path, body=body, headers=headers)
                response = upstream_conn.getresponse()
                data = response.read()
                upstream_conn.close()
                if truncate:
                    data = data[: len(data) // 2]
                self._reply(response.status, data)

            def _reply(self, status, data):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = Background(Handler)
        self.url = self.server.url

    def close(self):
        self.server.close()


def echo_key_server(status: int) -> Background:
    """An endpoint refusing every completion with `status`, its error body repeating the
    request's Authorization header (as some misconfigured servers and proxies do)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self._send(200, {"object": "list", "data": []})

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            sent = self.headers.get("Authorization")
            self._send(status, {"error": {"message": f"rejected; you sent Authorization: {sent}"}})

        def _send(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Background(Handler)
