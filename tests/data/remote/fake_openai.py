#!/usr/bin/python3
"""fake_openai.py: a scripted OpenAI-compatible server for tests/cli/test_remote.sh.

    python3 fake_openai.py PORT_FILE STATS_FILE MODE

Listens on a free loopback port (written to PORT_FILE). POST /v1/completions answers after
0.2 s with the prompt's last 3 characters as its text; GET /v1/models lists "fake". MODE:
  ok          always answer
  slow        always answer, after 0.6 s
  429x2       answer 429 (Retry-After: 0) to the first two requests, then answer
  400         always 400 with an OpenAI-style error
  500         always 500 (Retry-After: 0)
After every request STATS_FILE holds JSON: requests seen, the most at once, and the prompts in
their order of arrival."""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, STATS_FILE, MODE = sys.argv[1:4]
lock = threading.Lock()
stats = {"requests": 0, "max_at_once": 0, "prompts": []}
at_once = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body, retry_after=False):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self):
        global at_once
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with lock:
            stats["requests"] += 1
            n = stats["requests"]
            stats["prompts"].append(req.get("prompt"))
            at_once += 1
            stats["max_at_once"] = max(stats["max_at_once"], at_once)
        # "slow": as "ok", but each answer takes long enough that a client under load (the
        # sanitizer pass beside other tests) still has many requests out at once
        time.sleep(0.6 if MODE == "slow" else 0.2)
        # counted out, and the stats written, before the answer: a client that has its answer
        # may send its next request at once, and the test reads the stats as soon as the client
        # is done
        with lock:
            at_once -= 1
            with open(STATS_FILE, "w") as f:
                json.dump(stats, f)
        if MODE == "400":
            self.reply(400, {"error": {"message": "the fake refuses this", "type": "invalid_request_error"}})
        elif MODE == "500" or (MODE == "429x2" and n <= 2):
            self.reply(500 if MODE == "500" else 429, {"error": {"message": "try later"}}, True)
        else:
            p = req.get("prompt", "")
            self.reply(200, {"object": "text_completion", "model": req.get("model"),
                             "choices": [{"index": 0, "text": "ok:" + p[-3:], "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": len(p), "completion_tokens": 4,
                                       "total_tokens": len(p) + 4}})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
