"""A fake OpenAI-compatible chat server that keeps OpenAI's rules and answers like real models.

``openai_violation(body)`` checks a /chat/completions request against the rules OpenAI
enforces (and vLLM, Ollama and llama.cpp mostly copy): an assistant message with
``tool_calls`` is followed, before anything else, by one ``tool`` message per call id; a
``tool`` message answers a pending call id; ``tool_choice`` and ``parallel_tool_calls`` only
with ``tools``; a forced tool exists; strict function schemas are closed, with every
property required; ``response_format`` is one of text, json_object (with "json" in the
messages) or json_schema with a valid ``name`` and, when ``strict``, a closed object schema
with every property required; ``max_tokens`` is a positive integer; no unknown parameters.
A violation is answered with HTTP 400 and OpenAI's error body, as the real API does.

Answers keep the request's limits as servers do: a reply longer than ``max_tokens`` (counted
as 4 characters a token, thinking included) is cut there with ``finish_reason: "length"``.
Under ``response_format`` json_schema the reply is what constrained decoding gives: exactly
one JSON value that validates against the schema (no fences, no prose, no schema misses;
thinking only in ``reasoning_content``) — though a rambling model may pad it with
whitespace until the limit, as grammar-constrained small models do.

``FakeBrain`` answers this project's prompts as a model would: it reads the task from the
request, and ``Quirks`` switch on what real models do: think blocks (with braces,
"Conclusion:" and option letters inside), ``reasoning_content`` beside the content, fenced
JSON, prose around JSON, two objects, schema misses, malformed tool arguments, verbose
letters, and being wrong some of the time. Every draw is seeded by the request itself, so a
run is reproducible at any concurrency. The brain never reads the gold answer into its
verdict: the verifier answers from the reasoning it is shown, and the writer argues for
the option the paths support, or, when ``wrong`` strikes, for another one.

Tests use it through respx (``brain.handler``) or ``FakeOpenAIServer``, a real HTTP
server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jsonschema

# -- OpenAI's request rules ------------------------------------------------------------------
CHAT_PARAMETERS = {
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p", "n", "stream",
    "stream_options", "stop", "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "response_format", "seed", "user", "metadata", "store",
    "reasoning_effort", "service_tier", "modalities", "prediction", "verbosity", "prompt_cache_key",
}
ROLES = {"system", "developer", "user", "assistant", "tool"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RESPONSE_FORMATS = ("json_object", "json_schema", "text")
JSON_SCHEMA_KEYS = {"name", "description", "schema", "strict"}
CHARS_PER_TOKEN = 4


@dataclass
class Violation:
    message: str
    param: str | None = None
    code: str | None = None

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": "invalid_request_error", "param": self.param, "code": self.code}}


def openai_violation(body: dict) -> Violation | None:
    """The first rule of the chat-completions API that ``body`` breaks, or None."""
    for key in body:
        if key not in CHAT_PARAMETERS:
            return Violation(f"Unrecognized request argument supplied: {key}", key, "unknown_parameter")
    tools = body.get("tools")
    for key in ("tool_choice", "parallel_tool_calls"):
        if key in body and not tools:
            return Violation(f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.", key)
    names = []
    for i, tool in enumerate(tools or []):
        function = tool.get("function") or {}
        if tool.get("type") != "function" or not TOOL_NAME.match(function.get("name", "")):
            return Violation(f"Invalid 'tools[{i}]': a function with a valid name is required.", f"tools[{i}]")
        names.append(function["name"])
        if function.get("strict"):
            problem = _strict_problem(function.get("parameters") or {}, ())
            if problem:
                return Violation(f"Invalid schema for function '{function['name']}': {problem}",
                                 f"tools[{i}].function.parameters", "invalid_function_parameters")
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool) or body[key] < 1):
            return Violation(f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got "
                             f"{body[key]!r} instead.", key, "integer_below_min_value")
    if "response_format" in body:
        violation = _response_format_violation(body["response_format"], body.get("messages"))
        if violation:
            return violation
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name") not in names:
        return Violation("Invalid value for 'tool_choice': the named function is not among 'tools'.", "tool_choice")
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        return Violation(f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.", "tool_choice")
    return _messages_violation(body.get("messages"))


def _response_format_violation(response_format, messages) -> Violation | None:
    """OpenAI's checks of ``response_format`` (Structured Outputs)."""
    if not isinstance(response_format, dict):
        return Violation("Invalid type for 'response_format': expected an object.", "response_format", "invalid_type")
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMATS:
        return Violation(f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                         "response_format.type", "invalid_value")
    if kind == "json_object" and "json" not in json.dumps(messages).lower():
        return Violation("'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                         "'json_object'.", "messages", None)
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        return Violation("Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema",
                         "missing_required_parameter")
    for key in spec:
        if key not in JSON_SCHEMA_KEYS:
            return Violation(f"Unknown parameter: 'response_format.json_schema.{key}'.",
                             f"response_format.json_schema.{key}", "unknown_parameter")
    if "name" not in spec:
        return Violation("Missing required parameter: 'response_format.json_schema.name'.",
                         "response_format.json_schema.name", "missing_required_parameter")
    if not isinstance(spec["name"], str) or not TOOL_NAME.match(spec["name"]):
        return Violation("Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string "
                         "that matches the pattern '^[a-zA-Z0-9_-]+$'.", "response_format.json_schema.name", "invalid_value")
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        return Violation("Invalid type for 'response_format.json_schema.schema': expected an object.",
                         "response_format.json_schema.schema", "invalid_type")
    if "strict" in spec and not isinstance(spec["strict"], bool):
        return Violation("Invalid type for 'response_format.json_schema.strict': expected a boolean.",
                         "response_format.json_schema.strict", "invalid_type")
    if spec.get("strict"):
        schema = schema or {}
        problem = (None if schema.get("type") == "object"
                   else f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'.")
        problem = problem or _strict_problem(schema, ())
        if problem:
            return Violation(f"Invalid schema for response_format '{spec['name']}': {problem}", "response_format",
                             "invalid_json_schema")
    return None


def _messages_violation(messages) -> Violation | None:
    if not isinstance(messages, list) or not messages:
        return Violation("'messages' must be a non-empty array.", "messages", "empty_array")
    pending: list[str] = []  # call ids of the last assistant message not yet answered
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ROLES:
            return Violation(f"Invalid value: '{role}'. Supported values are: {', '.join(sorted(ROLES))}.", f"messages[{i}].role")
        if role != "tool" and pending:
            return Violation(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                "messages", None)
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                return Violation("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                 "message with 'tool_calls'.", f"messages[{i}].role")
            if not isinstance(m.get("content"), (str, list)):
                return Violation(f"Invalid type for 'messages[{i}].content'.", f"messages[{i}].content")
            pending.remove(m["tool_call_id"])
        elif role == "assistant":
            calls = m.get("tool_calls") or []
            if m.get("content") is None and not calls:
                return Violation(f"Missing required parameter: 'messages[{i}].content'.", f"messages[{i}].content")
            for j, call in enumerate(calls):
                function = call.get("function") or {}
                if not call.get("id") or call.get("type") != "function" or not isinstance(function.get("arguments"), str):
                    return Violation(f"Invalid 'messages[{i}].tool_calls[{j}]'.", f"messages[{i}].tool_calls[{j}]")
            pending = [c["id"] for c in calls]
        elif not isinstance(m.get("content"), (str, list)):
            return Violation(f"Missing required parameter: 'messages[{i}].content'.", f"messages[{i}].content")
    if pending:
        return Violation(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            "messages", None)
    return None


# Keywords OpenAI's strict mode does not accept: its documented ones are pattern and format
# for strings, the numeric ranges, and minItems and maxItems for arrays.
STRICT_UNSUPPORTED = ("minLength", "maxLength")


def _strict_problem(schema: dict, context: tuple) -> str | None:
    """OpenAI's strict mode: every object closed and every property required, no keyword it
    does not support."""
    unsupported = [k for k in STRICT_UNSUPPORTED if k in schema]
    if unsupported:
        return f"In context={context}, '{unsupported[0]}' is not permitted."
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        missing = set(schema.get("properties", {})) - set(schema.get("required", []))
        if missing:
            return f"In context={context}, 'required' is required to include every key in properties. Missing {sorted(missing)}."
    children = [(("properties", k), v) for k, v in schema.get("properties", {}).items()]
    children += [(("items",), schema["items"])] if isinstance(schema.get("items"), dict) else []
    children += [(("anyOf", i), v) for i, v in enumerate(schema.get("anyOf", []))]
    children += [(("$defs", k), v) for k, v in schema.get("$defs", {}).items()]
    for path, child in children:
        problem = _strict_problem(child, context + path)
        if problem:
            return problem
    return None


# -- responses ---------------------------------------------------------------------------------
def completion(content=None, tool_calls=None, prompt_tokens=10, completion_tokens=3, reasoning_content=None,
               finish_reason=None):
    message = {"role": "assistant", "content": content}
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(tool_calls)
        ]
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


@dataclass(frozen=True)
class Quirks:
    """How often (a probability each) the fake answers the way real models do."""

    think: float = 0.0  # a <think> block before the answer, in the content
    reasoning_content: float = 0.0  # the thinking in a reasoning_content field beside the content
    fenced: float = 0.0  # JSON in plain text inside ```json fences
    prose: float = 0.0  # a sentence before and after JSON in plain text
    two_objects: float = 0.0  # a draft object before the answer object in plain text
    schema_miss: float = 0.0  # valid JSON with a field missing, of the wrong type, or a number as a string
    malformed_args: float = 0.0  # tool-call arguments that are not JSON
    verbose_letters: float = 0.0  # "The answer is B.", "**B**", "(b)", "B. text", the option's text alone
    parallel_tools: float = 0.0  # several tool calls in one message while exploring
    wrong: float = 0.0  # the reasoning argues for another option than the one the paths support
    # Rambles: a long preamble before a text answer, or whitespace padding inside constrained
    # JSON (what grammar-constrained small models do), running into max_tokens when it is small.
    ramble: float = 0.0
    # The reasoning restates the facts it was given, and with this probability adds three steps
    # that are false on the graph (FALSE_STEPS), recorded in ``FakeBrain.false_steps``; told
    # which steps were not backed, it complies as with a repair (``repair_factor``).
    false_steps: float | None = None
    # A model told exactly what was wrong mostly complies: format quirks strike this much less
    # often on a repair request.
    repair_factor: float = 0.25
    seed: int = 0


MISBEHAVING = Quirks(think=0.4, reasoning_content=0.17, fenced=0.5, prose=0.3, two_objects=0.1, schema_miss=0.1,
                     malformed_args=0.05, verbose_letters=0.5, parallel_tools=0.3, wrong=0.2)
"""Issue 9's mix: about half the answers from reasoning models (0.4 + 0.6 × 0.17), 10%
schema misses, 5% malformed tool arguments, verbose letters, a model wrong a fifth of the time."""

RAMBLE = ("Let me explain this carefully and in detail, considering every aspect of the question, the "
          "patient's history, the findings and each of the options before I give my final answer. ")
THOUGHT = ('Let me think. The options are A, B, C and D; maybe {"draft": "A"} fits, or option B. '
           "Conclusion: not sure yet, B or C?")


class FakeBrain:
    def __init__(self, vocabulary: list[str] | dict[str, str | None] | None = None, quirks: Quirks = Quirks(),
                 ignores: frozenset[str] = frozenset()) -> None:
        """``vocabulary``: the names the fake 'knows' (with their node type, if given).
        ``ignores``: request parameters it accepts but does not act on, as some servers do:
        ``response_format`` (answers as if unconstrained), ``tools`` (never calls a tool, as
        llama-server with a chat template that has no tool support)."""
        self.ignores = ignores
        vocabulary = vocabulary if isinstance(vocabulary, dict) else dict.fromkeys(vocabulary or [])
        self.types = vocabulary
        self.known = {name.lower(): name for name in vocabulary}
        self.longest = max((len(name.split()) for name in vocabulary), default=0)
        self.quirks = quirks
        self.requests: list[dict] = []
        self.violations: list[str] = []
        self.false_steps: list[dict] = []  # {"text", "kind"} of every false step written
        self.lock = threading.Lock()

    # -- transports ------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        status, payload = self.reply(json.loads(request.content))
        return httpx.Response(status, json=payload)

    def reply(self, body: dict) -> tuple[int, dict]:
        """(HTTP status, JSON body) for a request: 400 for a rule it breaks, else an answer."""
        with self.lock:
            self.requests.append(body)
        violation = openai_violation(body)
        if violation:
            with self.lock:
                self.violations.append(violation.message)
            return 400, violation.body()
        return 200, self.respond(body)

    def respond(self, body: dict) -> dict:
        messages = body["messages"]
        prompt = _text(messages[0])
        rng = random.Random(hashlib.sha256(f"{self.quirks.seed}|{json.dumps(messages)}".encode()).digest())
        repairing = len(messages) > 1 and messages[-1]["role"] in ("tool", "user")
        quirks = self.quirks
        if repairing:
            factor = quirks.repair_factor
            quirks = replace(quirks, **{k: getattr(quirks, k) * factor for k in
                                        ("fenced", "prose", "two_objects", "schema_miss", "malformed_args", "verbose_letters",
                                         "ramble")})
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        turn = _Turn(rng, quirks, max(1, len(json.dumps(messages)) // CHARS_PER_TOKEN), limit)
        response_format = {} if "response_format" in self.ignores else body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            spec = response_format["json_schema"]
            turn.quirks = replace(turn.quirks, verbose_letters=0.0, schema_miss=0.0)  # the grammar allows neither
            return turn.constrained(self.answer_for(spec["name"], spec.get("schema") or {}, prompt, turn),
                                    spec.get("schema") or {})
        functions = {t["function"]["name"]: t["function"] for t in body.get("tools", [])} if "tools" not in self.ignores else {}
        if "lookup_entity" in functions:
            return self.explore(messages, prompt, turn, may_call=body.get("tool_choice") != "none")
        forced = body.get("tool_choice") if functions else None
        schema = ((forced or {}).get("function", {}).get("name") if isinstance(forced, dict) else None) or next(
            (n for n in functions if n in self.answers), None)
        if schema:
            answer = self.answer_for(schema, functions[schema].get("parameters") or {}, prompt, turn)
            return turn.structured(schema, answer, as_tool=True)
        schema = _schema_in(prompt)
        if schema:
            return turn.structured(schema, self.answers[schema](self, prompt, turn), as_tool=False)
        return turn.text(self.reason(prompt, turn), tokens=120)

    def answer_for(self, name: str, schema: dict, prompt: str, turn: _Turn) -> dict:
        """Its answer to a schema it knows; for one it does not (a probe), the first value
        each property allows."""
        if name in self.answers:
            return self.answers[name](self, prompt, turn)
        return {k: (v.get("enum") or [v.get("const", "")])[0] for k, v in schema.get("properties", {}).items()}

    # -- answers ---------------------------------------------------------------------
    def extract(self, prompt: str, turn: _Turn) -> dict:
        question = prompt.split("Question:\n", 1)[1].split("\nAnswer:", 1)[0]
        question = re.split(r"\n[A-Z]{1,2}\. ", question)[0]
        answer = re.search(r"^Answer: (?:[A-Z]{1,2}\. )?(.*)$", prompt, re.M).group(1)
        words = re.findall(r"[\w'-]+", question.lower())
        spans = {" ".join(words[i:i + n]) for n in range(1, min(self.longest, 6) + 1) for i in range(len(words) - n + 1)}
        found = sorted((self.known[s] for s in spans if s in self.known), key=len, reverse=True)
        if not found:  # unknown vocabulary: the longer words of the question
            found = list(dict.fromkeys(w for w in re.findall(r"[A-Za-z]{8,}", question)))[:8]
        return {"question_entities": [{"name": t, "type": self.types.get(t)} for t in found[:12]],
                "answer_entities": [{"name": answer, "type": self.types.get(answer)}]}

    def choose(self, prompt: str, turn: _Turn) -> dict:
        mentions = re.findall(r"^Mention (\d+):", prompt, re.M)
        return {"choices": [{"mention": int(m), "candidate": 1} for m in mentions]}

    def select(self, prompt: str, turn: _Turn) -> dict:
        k = int(re.search(r"choose at most (\d+) paths", prompt).group(1))
        chosen = []
        for group in prompt.split("\nGroup ")[1:]:
            chosen += [int(n) for n in re.findall(r"\[(\d+)\]", group)[:k]]
        return {"selected": chosen}

    def answer(self, prompt: str, turn: _Turn) -> dict:
        """The option the reasoning it is shown argues for; a guess when it argues for none."""
        head, reasoning = prompt.split("Reasoning:\n", 1)
        options = _options(head)
        if not options:
            return {"answer": reasoning.strip().splitlines()[-1][:60] if reasoning.strip() else "unknown"}
        argument = reasoning.split("Reasoning Process:", 1)[-1]
        return {"answer": turn.letter(_best_option(options, argument) or turn.rng.choice(sorted(options)), options)}

    def judge(self, prompt: str, turn: _Turn) -> dict:
        reference = re.search(r"^Reference answer: (.*)$", prompt, re.M).group(1).strip().lower()
        candidate = re.search(r"^Candidate answer: (.*)$", prompt, re.M).group(1).strip().lower()
        candidate = re.sub(r"^[a-j]\. ", "", candidate)
        same = reference in candidate or candidate in reference
        return {"correct": same, "reason": "same entity" if same else "different entity"}

    answers: dict[str, Callable] = {
        "ExtractedEntities": extract, "EntityChoices": choose, "PathSelection": select,
        "ReasonedAnswer": answer, "Judgement": judge,
    }

    def reason(self, prompt: str, turn: _Turn) -> str:
        """MedReason's format, arguing for the option the facts reach (or, when ``wrong``
        strikes, another one); free-text answers follow the facts' last entity."""
        facts = prompt.split("Medical facts:\n", 1)[1].split("\n\nQuestion:", 1)[0] if "Medical facts:" in prompt else ""
        options = _options(prompt.split("Question:", 1)[-1].split("\nAnswer:", 1)[0])
        if options:
            # The option the paths reach; with none, a guess: it does not copy the answer it was told.
            favoured = _best_option(options, facts) or turn.rng.choice(sorted(options))
            if turn.hit(turn.quirks.wrong):
                favoured = turn.rng.choice([x for x in sorted(options) if x != favoured] or [favoured])
            claim = options[favoured]
        else:
            last = re.findall(r"— ([^—\n]+)$", facts, re.M)
            claim = last[0].strip() if last else "the most likely diagnosis"
        steps = [f"The findings point along these chains to {claim}."]
        if turn.quirks.false_steps is not None:
            steps += self.restated_and_false(facts, prompt, turn)
        steps.append("The other options fit the findings less well.")
        numbered = "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))
        return f"Finding reasoning paths:\n{facts}\n\nReasoning Process:\n{numbered}\n\nConclusion:\n{claim}."

    def restated_and_false(self, facts: str, prompt: str, turn: _Turn) -> list[str]:
        """One step per fact it was given, in its own words; and, when ``false_steps`` strikes
        (less often when told which steps were not backed), a wrong relation, a contradiction
        and an unrelated pair, recorded."""
        hops = [hop for line in facts.splitlines() for hop in _hops(line)]
        steps = [RESTATED.get(label, "{head} is associated with {tail}").format(head=h, tail=t) for h, label, t in hops]
        told = "do not back" in prompt
        if not hops or not turn.hit(turn.quirks.false_steps * (turn.quirks.repair_factor if told else 1)):
            return steps
        head, label, tail = hops[0]
        unknown = sorted(name for name in self.known.values() if name.lower() not in prompt.lower())
        false = [
            ("wrong relation", WRONG_RELATION.get(label, "{head} is metabolised by the enzyme {tail}")),
            ("contradicted", CONTRADICTED.get(label, "{head} is not related to {tail}")),
        ]
        false = [(kind, template.format(head=head, tail=tail)) for kind, template in false]
        if unknown:
            false.append(("unrelated pair", f"{turn.rng.choice(unknown)} is a more specific form of {head}"))
        with self.lock:
            self.false_steps += [{"text": text, "kind": kind} for kind, text in false]
        return steps + [text for _, text in false]

    def explore(self, messages: list[dict], prompt: str, turn: _Turn, may_call: bool) -> dict:
        if messages[-1]["role"] == "tool" or not may_call:
            return turn.text("Found a path from the question's finding to the answer.", tokens=12)
        sources = re.findall(r"\(([^()]+)\)", re.search(r"^Question entities in the graph: (.*)$", prompt, re.M).group(1))
        targets = re.findall(r"\(([^()]+)\)", re.search(r"^Answer entities in the graph: (.*)$", prompt, re.M).group(1))
        if not sources or not targets:
            return turn.text("No entities to connect.", tokens=5)
        calls = [("shortest_paths", {"source": s, "target": targets[0], "max_hops": 4})
                 for s in sources[: 3 if turn.rng.random() < turn.quirks.parallel_tools else 1]]
        return turn.tool_calls(calls)


# How the fake restates a fact in its own words, and the false statements it makes about one.
RESTATED = {"phenotype present": "{head} typically presents with {tail}", "indication": "{head} is used to treat {tail}",
            "parent-child": "{head} is a type of {tail}", "side effect": "{head} can cause {tail}"}
WRONG_RELATION = {"indication": "{head} can cause {tail}", "phenotype present": "{head} is a more specific form of {tail}"}
CONTRADICTED = {"indication": "{head} should not be used for {tail}", "phenotype present": "{tail} is not a feature of {head}"}
_HOP = re.compile(r"\s*(—([^→—]+)→|←([^—←]+)—)\s*")


def _hops(path_line: str) -> list[tuple[str, str, str]]:
    """(head, label, tail) of each fact of a path as the prompt lists it: ``1. a ←label— b —label→ c``."""
    parts = _HOP.split(re.sub(r"^\d+\.\s*", "", path_line.strip()))
    names, hops = parts[::4], []
    for i, (forward, backward) in enumerate(zip(parts[2::4], parts[3::4])):
        label = (forward or backward).split(",")[0].strip()
        left, right = names[i].strip(), names[i + 1].strip()
        hops.append((left, label, right) if forward else (right, label, left))
    return hops


class _Turn:
    """One reply's random draws and the shapes real models give it."""

    def __init__(self, rng: random.Random, quirks: Quirks, prompt_tokens: int, limit: int | None = None) -> None:
        self.rng, self.quirks, self.prompt_tokens, self.limit = rng, quirks, prompt_tokens, limit

    def hit(self, rate: float) -> bool:
        return self.rng.random() < rate

    def thinking(self) -> tuple[str, str | None]:
        """(prefix for the content, reasoning_content) of a reasoning model, or neither."""
        if self.hit(self.quirks.think):
            return f"<think>\n{THOUGHT}\n</think>\n\n", None
        if self.hit(self.quirks.reasoning_content):
            return "", THOUGHT
        return "", None

    def text(self, content: str, tokens: int = 20) -> dict:
        prefix, reasoning = self.thinking()
        if self.hit(self.quirks.ramble):
            content = RAMBLE * 40 + content
        return self.limited(prefix + content, reasoning, tokens)

    def limited(self, content: str, reasoning: str | None, tokens: int, tool_calls=None) -> dict:
        """The reply as the server sends it: cut at ``max_tokens`` (thinking counts too)."""
        spent = (len(content or "") + len(reasoning or "") + len(json.dumps(tool_calls or ""))) // CHARS_PER_TOKEN
        if self.limit is None or spent <= self.limit:
            return completion(content, tool_calls=tool_calls, prompt_tokens=self.prompt_tokens,
                              completion_tokens=max(tokens, spent), reasoning_content=reasoning)
        room = self.limit * CHARS_PER_TOKEN
        reasoning = reasoning[:room] if reasoning else reasoning
        room -= len(reasoning or "")
        content = (content or "")[:max(room, 0)]
        if tool_calls:  # the arguments are cut mid-JSON
            name, args = tool_calls[0]
            tool_calls = [(name, (args if isinstance(args, str) else json.dumps(args))[:max(room - len(content), 1)])]
        return completion(content or (None if tool_calls else ""), tool_calls=tool_calls, prompt_tokens=self.prompt_tokens,
                          completion_tokens=self.limit, reasoning_content=reasoning, finish_reason="length")

    def tool_calls(self, calls: list[tuple[str, dict]]) -> dict:
        prefix, reasoning = self.thinking()
        shaped = [(name, json.dumps(args)[:-7] if self.hit(self.quirks.malformed_args) else args) for name, args in calls]
        if self.hit(self.quirks.ramble):  # it talks at length before calling
            prefix = RAMBLE * 40 + prefix
        return self.limited(prefix or None, reasoning, 20, tool_calls=shaped)

    def constrained(self, answer, schema: dict) -> dict:
        """What constrained decoding gives: one JSON value valid under ``schema`` (the
        grammar allows nothing else: arrays end at ``maxItems``, strings at ``maxLength``),
        thinking apart; a rambling model pads it with whitespace the grammar allows, until it
        stops or the limit cuts it."""
        answer = _fitted(answer, schema)
        jsonschema.validate(answer, schema)  # the fake's own answers must be what a grammar allows
        prefix, reasoning = self.thinking()
        reasoning = reasoning or (THOUGHT if prefix else None)
        text = json.dumps(answer)
        if self.hit(self.quirks.ramble):
            text = text[:1] + "\n" * 4000 + text[1:]
        return self.limited(text, reasoning, 20)

    def structured(self, schema: str, answer: dict, as_tool: bool) -> dict:
        if self.hit(self.quirks.schema_miss):
            answer = self.miss(answer)
        if as_tool:
            return self.tool_calls([(schema, answer)])
        text = json.dumps(answer)
        if self.hit(self.quirks.two_objects):
            text = json.dumps({"draft": True, "note": "checking the schema"}) + "\n" + text
        if self.hit(self.quirks.fenced):
            text = f"```json\n{text}\n```"
        if self.hit(self.quirks.prose):
            text = f"Here is the JSON you asked for:\n{text}\nLet me know if you need anything else."
        return self.text(text)

    def miss(self, answer: dict) -> dict:
        """Valid JSON that breaks the schema as weaker models do."""
        key = self.rng.choice(sorted(answer))
        value, answer = answer[key], dict(answer)
        kind = self.rng.choice(["missing", "wrong type", "number as string"])
        if kind == "missing":
            del answer[key]
        elif kind == "wrong type":
            answer[key] = json.dumps(value) if isinstance(value, list) else [value]
        else:
            answer = json.loads(re.sub(r"(?<![\w.\"])(\d+)(?![\w.\"])", r'"\1"', json.dumps(answer)))
        return answer

    def letter(self, letter: str, options: dict[str, str]) -> str:
        if not self.hit(self.quirks.verbose_letters):
            return letter
        return self.rng.choice([
            f"{letter}.", f"({letter.lower()})", f"**{letter}**", f"Option {letter}", f"The answer is {letter}.",
            f"{letter}. {options[letter]}", options[letter], letter.lower(),
        ])


def _fitted(value, schema: dict):
    """``value`` as a grammar compiled from ``schema`` lets it out: arrays ended at
    ``maxItems``, strings at ``maxLength`` (through ``items``, ``properties`` and the first
    ``anyOf`` branch that is not null)."""
    if value is not None and "anyOf" in schema:
        schema = next((o for o in schema["anyOf"] if o.get("type") != "null"), {})
    if isinstance(value, list):
        return [_fitted(v, schema.get("items") or {}) for v in value[:schema.get("maxItems", len(value))]]
    if isinstance(value, str):
        return value[:schema.get("maxLength", len(value))]
    if isinstance(value, dict):
        return {k: _fitted(v, (schema.get("properties") or {}).get(k) or {}) for k, v in value.items()}
    return value


def _text(message: dict) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _options(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z]{1,2})\. (.*)$", text, re.M))


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4}


def _best_option(options: dict[str, str], text: str) -> str | None:
    """The option sharing the most words with ``text``; None when none shares any, or on a tie."""
    words = _words(text)
    overlap = {letter: len(_words(option) & words) for letter, option in options.items()}
    best = max(overlap.values())
    leaders = [letter for letter, n in overlap.items() if n == best]
    return leaders[0] if best and len(leaders) == 1 else None


def _schema_in(prompt: str) -> str | None:
    """The schema a text-mode prompt asks for (its top-level title, after its properties)."""
    if "matches this JSON schema" not in prompt:
        return None
    titles = re.findall(r'"title": "(\w+)"', prompt.rsplit("matches this JSON schema", 1)[1])
    return titles[-1] if titles else None


class FakeOpenAIServer:
    """The brain behind a real HTTP server on 127.0.0.1, with optional latency and faults."""

    def __init__(self, brain: FakeBrain, latency: float | Callable[[dict], float] = 0.0, fault_rate: float = 0.0,
                 seed: int = 0, override: Callable[[dict], tuple[int, dict, dict] | None] | None = None) -> None:
        """``latency``: seconds per request, or a function of the request body giving them;
        like a server generating, it stops when the client closes the connection (counted in
        ``abandoned``). ``override``: a test's own (status, body, headers) for a request, or
        None to let the brain answer; a body given as bytes is sent as it is."""
        self.brain, self.latency, self.fault_rate, self.override = brain, latency, fault_rate, override
        self.random = random.Random(seed)
        self.hits = 0
        self.abandoned = 0  # requests whose client hung up before the answer was ready
        self.authorization: set[str] = set()
        # While set, every request gets a 401 whose body echoes the request's key and
        # Authorization header, as some proxies and self-hosted servers do.
        self.reject_echoing_key = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.brain.lock:
                    server.hits += 1
                    server.authorization.add(self.headers.get("Authorization", ""))
                    fault = server.random.random() < server.fault_rate
                delay = server.latency(body) if callable(server.latency) else server.latency
                if delay and self._client_left_within(delay):
                    with server.brain.lock:
                        server.abandoned += 1
                    return
                if server.reject_echoing_key:
                    auth = self.headers.get("Authorization", "")
                    key = auth.removeprefix("Bearer ")
                    self._send(401, {"error": {
                        "message": f"Incorrect API key provided: {key}. "
                                   f"Request headers: Authorization: {auth}; api_key={key}",
                        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
                    return
                if fault:
                    status = server.random.choice([429, 500])
                    self._send(status, {"error": {"message": "injected fault", "type": "server_error"}},
                               {"retry-after-ms": "1"})
                    return
                overridden = server.override(body) if server.override else None
                self._send(*(overridden or server.brain.reply(body)))

            def _client_left_within(self, seconds: float) -> bool:
                """Wait ``seconds`` as generation would, or until the client hangs up."""
                end = time.monotonic() + seconds
                while (left := end - time.monotonic()) > 0:
                    ready, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                    if ready and not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                return False

            def _send(self, status, payload, headers=None):
                raw = isinstance(payload, bytes)
                data = payload if raw else json.dumps(payload).encode()
                headers = dict(headers or {})
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "text/plain" if raw else "application/json"))
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
