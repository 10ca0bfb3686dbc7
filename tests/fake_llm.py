"""A fake OpenAI-compatible chat model: one deterministic 'brain', two transports.

``FakeBrain.respond(request)`` answers a /chat/completions request body the way a
competent model would for this project's prompts, deciding what was asked from the tool
or schema the request offers. Tests use it through respx (``brain.handler``) or through
``FakeOpenAIServer``, a real HTTP server on 127.0.0.1 for end-to-end runs.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def completion(content=None, tool_calls=None, prompt_tokens=10, completion_tokens=3):
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(tool_calls)
        ]
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class FakeBrain:
    def __init__(self, vocabulary: list[str] | None = None) -> None:
        self.vocabulary = sorted(vocabulary or [], key=len, reverse=True)
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    # -- transports ------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=self.respond(json.loads(request.content)))

    def respond(self, body: dict) -> dict:
        with self.lock:
            self.requests.append(body)
        messages = body["messages"]
        prompt = messages[0]["content"] if isinstance(messages[0]["content"], str) else ""
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        tokens = max(1, len(json.dumps(messages)) // 4)
        if "lookup_entity" in tools:
            return self.explore(messages, prompt, tokens)
        answer = {
            "ExtractedEntities": self.extract, "EntityChoices": self.choose, "PathSelection": self.select,
            "ReasonedAnswer": self.answer, "Judgement": self.judge,
        }
        for name in tools:
            if name in answer:
                return completion(tool_calls=[(name, answer[name](prompt))], prompt_tokens=tokens, completion_tokens=20)
        return completion(self.reason(prompt), prompt_tokens=tokens, completion_tokens=120)

    # -- answers ---------------------------------------------------------------------
    def extract(self, prompt: str) -> dict:
        question = prompt.split("Question:\n", 1)[1].split("\nAnswer:", 1)[0]
        question = re.split(r"\n[A-Z]{1,2}\. ", question)[0]
        answer = re.search(r"^Answer: (?:[A-Z]{1,2}\. )?(.*)$", prompt, re.M).group(1)
        found = [term for term in self.vocabulary if term.lower() in question.lower()]
        if not found:  # unknown vocabulary: the longer words of the question
            found = list(dict.fromkeys(w for w in re.findall(r"[A-Za-z]{8,}", question)))[:8]
        return {"question_entities": [{"name": t, "type": None} for t in found[:12]],
                "answer_entities": [{"name": answer, "type": None}]}

    def choose(self, prompt: str) -> dict:
        mentions = re.findall(r"^Mention (\d+):", prompt, re.M)
        return {"choices": [{"mention": int(m), "candidate": 1} for m in mentions]}

    def select(self, prompt: str) -> dict:
        k = int(re.search(r"choose at most (\d+) paths", prompt).group(1))
        chosen = []
        for group in prompt.split("\nGroup ")[1:]:
            chosen += [int(n) for n in re.findall(r"\[(\d+)\]", group)[:k]]
        return {"selected": chosen}

    def answer(self, prompt: str) -> dict:
        reasoning = prompt.split("Reasoning:\n", 1)[1]
        options = dict(re.findall(r"^([A-Z]{1,2})\. (.*)$", prompt.split("Reasoning:\n", 1)[0], re.M))
        for letter, text in options.items():
            if text.lower() in reasoning.lower():
                return {"answer": letter}
        return {"answer": re.sub(r"^\d+\.\s*", "", reasoning.strip().splitlines()[-1])[:60] if not options else "A"}

    def judge(self, prompt: str) -> dict:
        reference = re.search(r"^Reference answer: (.*)$", prompt, re.M).group(1).strip().lower()
        candidate = re.search(r"^Candidate answer: (.*)$", prompt, re.M).group(1).strip().lower()
        same = reference in candidate or candidate in reference
        return {"correct": same, "reason": "same entity" if same else "different entity"}

    def reason(self, prompt: str) -> str:
        facts = prompt.split("Medical facts:\n", 1)[1].split("\n\nQuestion:", 1)[0] if "Medical facts:" in prompt else ""
        answer = re.search(r"^Answer: (?:[A-Z]{1,2}\. )?(.*)$", prompt, re.M)
        answer = answer.group(1) if answer else "unknown"
        return (f"Finding reasoning paths:\n{facts}\n\nReasoning Process:\n1. The findings point along these "
                f"chains to {answer}.\n\nConclusion:\nThe answer is {answer}.")

    def explore(self, messages: list[dict], prompt: str, tokens: int) -> dict:
        if any(m.get("role") == "tool" for m in messages):
            return completion("Found a connecting path.", prompt_tokens=tokens, completion_tokens=8)
        sources = re.findall(r"\(([^()]+)\)", re.search(r"^Question entities in the graph: (.*)$", prompt, re.M).group(1))
        targets = re.findall(r"\(([^()]+)\)", re.search(r"^Answer entities in the graph: (.*)$", prompt, re.M).group(1))
        if not sources or not targets:
            return completion("No entities to connect.", prompt_tokens=tokens, completion_tokens=5)
        return completion(tool_calls=[("find_paths", {"source": sources[0], "target": targets[0], "max_hops": 4})],
                          prompt_tokens=tokens, completion_tokens=15)


class FakeOpenAIServer:
    """The brain behind a real HTTP server on 127.0.0.1, with optional latency and faults."""

    def __init__(self, brain: FakeBrain, latency: float | Callable[[dict], float] = 0.0, fault_rate: float = 0.0,
                 seed: int = 0) -> None:
        """``latency``: seconds per request, or a function of the request body giving them."""
        self.brain, self.latency, self.fault_rate = brain, latency, fault_rate
        self.random = random.Random(seed)
        self.hits = 0
        self.authorization: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.brain.lock:
                    server.hits += 1
                    server.authorization.add(self.headers.get("Authorization", ""))
                    fault = server.random.random() < server.fault_rate
                delay = server.latency(body) if callable(server.latency) else server.latency
                if delay:
                    time.sleep(delay)
                if fault:
                    status = server.random.choice([429, 500])
                    self._send(status, {"error": {"message": "injected fault", "type": "server_error"}},
                               {"retry-after-ms": "1"})
                    return
                self._send(200, server.brain.respond(body))

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
