"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for the server-judge tests: it answers
`GET /v1/models`, and `POST /v1/completions` / `/v1/chat/completions` with a reply computed from the
request, after any scripted failures. Every request body is recorded; so is the most requests it ever
had in flight at once."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(text: str, *, finish_reason: str = "stop", tokens: int = 7, chat: bool = False,
               reasoning: str | None = None, reasoning_field: str = "reasoning_content") -> dict:
    """An OpenAI completion (or chat completion) body with one choice and its usage; `reasoning` goes into
    the message's `reasoning_field` as a server's reasoning parser puts it."""
    if chat:
        message = {"role": "assistant", "content": text}
        if reasoning is not None:
            message[reasoning_field] = reasoning
        choice = {"index": 0, "message": message, "finish_reason": finish_reason}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
        kind = "text_completion"
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
    return {"id": "x", "object": kind, "created": 0, "model": "fake-judge", "choices": [choice], "usage": usage}


class FakeOpenAIServer:
    """Serves until `close()`. `reply(body) -> (status, json_or_text)` answers generation requests;
    `failures` lists statuses answered (with an error body) to the first requests, in order; `delay`
    seconds are slept per generation request. `models` is what `/v1/models` lists."""

    def __init__(self, reply, *, failures=(), delay: float = 0.0, models=("fake-judge",)):
        self.reply, self.failures, self.delay, self.models = reply, list(failures), delay, list(models)
        self.bodies, self.statuses = [], []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, payload):
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": name, "object": "model", "created": 0, "owned_by": "test"} for name in server.models]
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    failure = server.failures.pop(0) if server.failures else None
                try:
                    time.sleep(server.delay)
                    if failure is not None:
                        status, payload = failure, {"error": {"message": f"scripted failure {failure}"}}
                    else:
                        status, payload = server.reply(body)
                    with server.lock:
                        server.statuses.append(status)
                    self._send(status, payload)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
