"""LLM access: any OpenAI-compatible endpoint through ChatOpenAI, behind a thin interface.

``LLM`` is what nodes use: structured answers validated against a pydantic schema, free
text, and single tool-calling rounds; each call returns its token usage and the model's
thinking beside its result. Structured answers come by one of three mechanisms, chosen per
endpoint (``structured_output``): constrained JSON (``response_format`` json_schema, which
llama.cpp, vLLM, SGLang, Ollama, LM Studio and OpenAI compile into the decoding), a forced
tool call, or JSON in plain text; ``auto`` asks the endpoint once which it honours, in that
order. Every request carries its node's ``max_tokens``, so a small model cannot ramble until
the context is full.

Two kinds of failure, two exceptions:
- ``LLMError``: the endpoint failed for good — down, refusing the key, the client's retries
  (429, 5xx, timeouts) spent, or an HTTP 200 that is not a chat completion. That sample is
  an ``error`` row.
- ``UnusableAnswer`` (a kind of ``LLMError``): the model answered, but even after one repair
  request the answer is malformed or cut off at ``max_tokens``. Nodes with a KG-only
  behaviour fall back to it and the sample records it as degraded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.utils.function_calling import convert_to_openai_function
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

import prompts
from agent.config import Settings
from agent.reasoning.state import Usage
from agent.reasoning.state import add_usage as add
from agent.redaction import redact, url_secrets

T = TypeVar("T", bound=BaseModel)
V = TypeVar("V")
StructuredMode = Literal["json_schema", "tools", "text"]
PROBE_ORDER: tuple[StructuredMode, ...] = ("json_schema", "tools", "text")
# Reasoning models (DeepSeek-R1, Qwen3, gpt-oss) think in a tagged block before answering;
# some chat templates open the block in the prompt, so a reply may hold only its end.
_THINKING = re.compile(r"<(think|thinking)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_THINKING_END = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_THINKING_START = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
# What a probe request asks for: an answer no model gives unless the endpoint constrains it.
PROBE_PROMPT = "Say hello."
PROBE_MAX_TOKENS = 64


class Probe(BaseModel):
    """Whether the endpoint honours a structured-output mechanism."""

    probe: Literal["medreason"]


def failure_message(exc: BaseException) -> str:
    """What a failed sample or chat turn reports: an ``LLMError``'s own message (it names the
    node and is redacted), any other failure with its type."""
    return str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"


class LLMError(RuntimeError):
    """An LLM call failed for good; the message names the node and the cause. ``usage``
    counts every request made for it, so a failed sample's calls still reach the totals."""

    def __init__(self, message: str, usage: Usage | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.usage = usage or NO_USAGE
        self.status = status  # the HTTP status the endpoint answered, when it answered


class UnusableAnswer(LLMError):
    """The model's answer stayed malformed (or cut off) after its one repair: a node with a
    KG-only behaviour falls back to it instead of failing the sample."""

    @property
    def why(self) -> str:
        """The message without its node: what the row's ``degraded`` entry says."""
        return str(self).split(": ", 1)[-1]


class Answer(NamedTuple, Generic[V]):
    """A usable answer, what its requests cost, and the model's thinking behind it."""

    value: V
    usage: Usage
    thinking: str


NO_USAGE = Usage(llm_calls=0, input_tokens=0, output_tokens=0, repairs=0)
ONE_FAILED_CALL = Usage(llm_calls=1, input_tokens=0, output_tokens=0, repairs=0)
ONE_REPAIR = Usage(llm_calls=0, input_tokens=0, output_tokens=0, repairs=1)


def usage_of(message: AIMessage) -> Usage:
    meta = message.usage_metadata or {}
    return Usage(llm_calls=1, input_tokens=meta.get("input_tokens", 0), output_tokens=meta.get("output_tokens", 0), repairs=0)


def _raw_text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, list):  # some servers send content as a list of text parts
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return content or ""


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, answer) of a reply: tagged blocks hold braces, "Conclusion:" and option
    letters that must never be read as the answer; an unclosed block (thinking cut off)
    leaves no answer, a lone closing tag (the template opened the block) ends the thinking."""
    thoughts = [m.group(2).strip() for m in _THINKING.finditer(text)]
    rest = _THINKING.sub("", text)
    *before, rest = _THINKING_END.split(rest)
    thoughts += [b.strip() for b in before]
    rest, *unclosed = _THINKING_START.split(rest, maxsplit=1)
    thoughts += [u.strip() for u in unclosed]
    return "\n\n".join(t for t in thoughts if t), rest.strip()


def strip_thinking(text: str) -> str:
    """``text`` without a reasoning model's thinking."""
    return split_thinking(text)[1]


def content_of(message: AIMessage) -> str:
    """A reply's visible answer: its text without thinking."""
    return strip_thinking(_raw_text(message))


def thinking_of(message: AIMessage) -> str:
    """A reply's thinking: ``reasoning_content`` beside the content (vLLM, llama.cpp,
    DeepSeek) and tagged blocks inside it."""
    beside = message.additional_kwargs.get("reasoning_content") or ""
    inside = split_thinking(_raw_text(message))[0]
    return "\n\n".join(t for t in (beside.strip(), inside) if t)


def cut_off(message: AIMessage) -> bool:
    """The server stopped the reply at ``max_tokens``."""
    return message.response_metadata.get("finish_reason") == "length"


# -- what an endpoint answers ------------------------------------------------------------------
def completion_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why an HTTP 200 reply to /chat/completions is not a chat completion, or None: a proxy's
    HTML page, an empty body, ``{"choices": []}``, an ``error`` sent with status 200, a
    choice without a message. One line with the content type and the body's first bytes."""
    shown = " ".join(body[:120].decode("utf-8", "replace").split())
    where = f"content type {content_type or 'none'}, body starts {shown!r}" if body.strip() else "empty body"
    try:
        data = json.loads(body)
    except ValueError:
        return f"not a chat completion: HTTP {status}, {where}"
    if not isinstance(data, dict):
        return f"not a chat completion: HTTP {status}, {where}"
    if data.get("error"):
        error = data["error"]
        said = error.get("message") if isinstance(error, dict) else error
        return f"the endpoint answered HTTP {status} with an error: {' '.join(str(said).split())[:160]}"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return f"not a chat completion (no choices): HTTP {status}, {where}"
    if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
        return f"not a chat completion (a choice without a message): HTTP {status}, {where}"
    return None


def _checked(response) -> None:
    if response.status_code != 200 or not response.request.url.path.endswith("/chat/completions"):
        return
    problem = completion_problem(response.status_code, response.headers.get("content-type", ""), response.content)
    if problem:
        # An OpenAIError passes the client's retry loop as it is: a page is not retried.
        raise openai.APIResponseValidationError(response, None, message=problem)


def _check_completion(response) -> None:
    response.read()
    _checked(response)


async def _acheck_completion(response) -> None:
    await response.aread()
    _checked(response)


def response_checks(asynchronous: bool = False) -> dict[str, list[Callable]]:
    """httpx ``event_hooks`` that turn an HTTP 200 which is not a chat completion into an
    ``openai.APIResponseValidationError`` with ``completion_problem``'s message, before the
    client tries to read it (and fails with a traceback, or quietly with nothing)."""
    return {"response": [_acheck_completion if asynchronous else _check_completion]}


class ChatEndpoint(ChatOpenAI):
    """ChatOpenAI that keeps a reasoning model's ``reasoning_content`` (ChatOpenAI drops it)."""

    def _create_chat_result(self, response: dict | openai.BaseModel, generation_info: dict | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        raw = response if isinstance(response, dict) else response.model_dump()
        for generation, choice in zip(result.generations, raw.get("choices") or []):
            message = choice.get("message") or {}
            thinking = message.get("reasoning_content") or message.get("reasoning")
            if isinstance(thinking, str) and thinking:
                generation.message.additional_kwargs["reasoning_content"] = thinking
        return result


# -- the interface the nodes use -----------------------------------------------------------------
class LLM:
    def __init__(self, chat: BaseChatModel, structured: StructuredMode | Literal["auto"] = "tools", strict: bool = False,
                 max_tokens: Mapping[str, int] | None = None) -> None:
        self.chat = chat
        self.setting = structured
        self.strict = strict  # closed schemas with every property required; the server enforces them
        self.max_tokens = dict(max_tokens or {})  # per node; a node not named gets the server's default
        self._mode: StructuredMode | None = None if structured == "auto" else structured
        self._tool_calls: bool | None = True if structured == "tools" else None
        self.probes: list[str] = []  # what each probe found, in order
        self.probe_usage: Usage = NO_USAGE
        self._lock = threading.Lock()

    # -- what the endpoint honours -------------------------------------------------------------
    def structured_output(self, node: str = "probe") -> StructuredMode:
        """The mechanism structured answers use; with ``auto``, the first that the endpoint
        honours (asked once per LLM, so once per run). Raises LLMError, naming ``node``,
        when it cannot be asked (down, refused key)."""
        with self._lock:
            if self._mode is None:
                self._mode = next(m for m in PROBE_ORDER if m == "text" or self._honours(m, node))
            return self._mode

    def makes_tool_calls(self, node: str = "probe") -> bool:
        """Whether the endpoint makes tool calls (exploring the KG needs them)."""
        with self._lock:
            if self._tool_calls is None:
                self._tool_calls = self._honours("tools", node)
            return self._tool_calls

    def knows_tool_calls(self, makes: bool | None) -> None:
        """What another process's probe found (a Ray actor is told the driver's), so this LLM
        does not ask the endpoint again; None tells nothing."""
        with self._lock:
            if self._tool_calls is None:
                self._tool_calls = makes

    def report(self) -> dict[str, Any]:
        """For summary.json and the run header: the setting, what it resolved to, the probes."""
        return {"setting": self.setting, "mode": self._mode, "tool_calls": self._tool_calls,
                "probes": list(self.probes), "probe_calls": self.probe_usage["llm_calls"]}

    def _honours(self, mode: StructuredMode, node: str) -> bool:
        """One small request by ``mode``; true when its answer validates. A server refusing
        the parameter (HTTP 400/422) or ignoring it (prose back) does not honour it."""
        schema_ask = self._ask_json_schema if mode == "json_schema" else self._ask_tools
        read = self._read_text if mode == "json_schema" else self._read_tool_calls
        try:
            raw = self._request(node, lambda: schema_ask(Probe, [HumanMessage(PROBE_PROMPT)], PROBE_MAX_TOKENS))
        except LLMError as exc:
            if exc.status not in (400, 422):
                raise  # the endpoint is down or refuses the key: the sample that asked has its error
            self.probe_usage = add(self.probe_usage, exc.usage)
            self.probes.append(f"{mode}: refused ({str(exc).split(': ', 1)[-1][:160]})")
            return False
        self.probe_usage = add(self.probe_usage, usage_of(raw))
        parsed, problem, _ = read(raw, Probe)
        self.probes.append(f"{mode}: honoured" if parsed else f"{mode}: not honoured ({problem[:160]})")
        return parsed is not None

    # -- structured answers ----------------------------------------------------------------------
    def structured(self, node: str, schema: type[T], prompt: str) -> Answer[T]:
        """A validated ``schema`` instance for ``prompt``, with one repair request that
        states the exact problem (or, for a reply cut off at ``max_tokens``, asks for less);
        every request counts in the usage, repairs also apart. Raises UnusableAnswer when
        the repaired answer is still unusable."""
        mode = self.structured_output(node)
        if mode == "tools":
            ask, read, first = self._ask_tools, self._read_tool_calls, prompt
        else:
            ask = self._ask_json_schema if mode == "json_schema" else self._ask_text
            read = self._read_text
            first = prompt + prompts.render("json_instruction", schema=json.dumps(schema.model_json_schema()))
        messages: list[BaseMessage] = [HumanMessage(first)]
        limit = self.max_tokens.get(node)
        usage, thoughts = NO_USAGE, []
        for attempt in range(2):
            if attempt:
                usage = add(usage, ONE_REPAIR)
            raw, usage = self._call(node, lambda: ask(schema, messages, limit), usage)
            thoughts.append(thinking_of(raw))
            parsed, problem, call_ids = read(raw, schema)
            if parsed is not None:
                return Answer(parsed, usage, _joined(thoughts))
            if cut_off(raw):
                problem = self._cut_off_problem(limit)
            messages += [_without_reasoning(raw), *_repair(problem, call_ids)]
        raise UnusableAnswer(f"{node}: {_unusable(problem, limit)}", usage)

    @staticmethod
    def _cut_off_problem(limit: int | None) -> str:
        return (f"{CUT_OFF} of {limit} tokens; reply much shorter, with only what the format asks for and no "
                "explanation")

    def _function(self, schema: type[BaseModel]) -> dict[str, Any]:
        """``schema`` as an OpenAI function. Strict schemas leave out the string-length bounds,
        which OpenAI's strict mode does not accept (its documented keywords: pattern and
        format for strings, the numeric ranges, minItems and maxItems); validation still cuts
        strings at them."""
        function = convert_to_openai_function(schema, strict=self.strict or None)
        if self.strict:
            function["parameters"] = _without_keys(function["parameters"], STRICT_UNSUPPORTED)
        return function

    def _ask_tools(self, schema: type[BaseModel], messages: list[BaseMessage], limit: int | None) -> AIMessage:
        # One tool, forced by name: ``parallel_tool_calls`` is not needed, and some servers
        # reject it, so it is not sent.
        bound = self.chat.bind_tools([{"type": "function", "function": self._function(schema)}],
                                     tool_choice=schema.__name__)
        return bound.invoke(messages, **_limit(limit))

    def _ask_json_schema(self, schema: type[BaseModel], messages: list[BaseMessage], limit: int | None) -> AIMessage:
        function = self._function(schema)
        response_format = {"type": "json_schema", "json_schema": {
            "name": function["name"], "schema": function["parameters"], "strict": self.strict}}
        # Sent as a plain body field: given as ``response_format``, ChatOpenAI switches to the
        # SDK's parse helper, which raises on a reply cut off at max_tokens instead of
        # returning it, and drops ``reasoning_content``; this way every reply reads alike.
        return self.chat.invoke(messages, extra_body={"response_format": response_format}, **_limit(limit))

    def _ask_text(self, schema: type[BaseModel], messages: list[BaseMessage], limit: int | None) -> AIMessage:
        return self.chat.invoke(messages, **_limit(limit))

    @staticmethod
    def _read_tool_calls(raw: AIMessage, schema: type[T]) -> tuple[T | None, str, dict[str, str]]:
        """The first call of ``schema`` whose arguments validate; otherwise the problem and
        the problem per call id (each call needs its own tool message: OpenAI refuses any
        other message before them), none when the reply called no tool."""
        problems: dict[str, str] = {}
        for call in raw.tool_calls:
            if call["name"] != schema.__name__:
                problems[call["id"]] = f"unknown tool {call['name']!r}; call {schema.__name__}"
                continue
            try:
                return schema.model_validate(call["args"]), "", {}
            except ValidationError as exc:
                problems[call["id"]] = f"the arguments did not match the schema: {_first_error(exc)}"
        for bad in raw.invalid_tool_calls:
            problems[bad["id"]] = f"the arguments are not valid JSON ({json_problem(bad.get('args'))})"
        if not problems:
            # Servers whose tool-call parser missed the call leave its JSON in the content.
            parsed, problem = parse_json_answer(content_of(raw), schema)
            if parsed is not None:
                return parsed, "", {}
            return None, f"the reply called no tool ({problem}); call {schema.__name__}", {}
        return None, next(iter(problems.values())), problems

    @staticmethod
    def _read_text(raw: AIMessage, schema: type[T]) -> tuple[T | None, str, dict[str, str]]:
        parsed, problem = parse_json_answer(content_of(raw), schema)
        return parsed, problem, {}

    # -- free text and tool rounds -------------------------------------------------------------------
    def text(self, node: str, prompt: str, check: Callable[[str], str | None] = lambda t: None) -> Answer[str]:
        """Free text for ``prompt``, thinking apart; ``check`` returns a problem to repair
        once, or None. A reply cut off at ``max_tokens`` is never used. Raises UnusableAnswer."""
        messages: list[BaseMessage] = [HumanMessage(prompt)]
        limit = self.max_tokens.get(node)
        usage, thoughts = NO_USAGE, []
        for attempt in range(2):
            if attempt:
                usage = add(usage, ONE_REPAIR)
            raw, usage = self._call(node, lambda: self.chat.invoke(messages, **_limit(limit)), usage)
            thoughts.append(thinking_of(raw))
            content = content_of(raw)
            problem = (self._cut_off_problem(limit) if cut_off(raw)
                       else "the reply was empty" if not content else check(content))
            if problem is None:
                return Answer(content, usage, _joined(thoughts))
            messages += [_without_reasoning(raw), HumanMessage(prompts.render("repair", problem=problem))]
        raise UnusableAnswer(f"{node}: {_unusable(problem, limit)}", usage)

    def tool_round(
        self, node: str, messages: list[BaseMessage], tools: list, usage: Usage, allow_calls: bool = True
    ) -> tuple[AIMessage, Usage]:
        """One request offering ``tools``; the model may call several (each answered by the
        caller), so ``parallel_tool_calls`` is not sent. ``allow_calls=False`` asks for a
        closing message (``tool_choice="none"``; the tools stay, as the history uses them)."""
        bound = self.chat.bind_tools(tools) if allow_calls else self.chat.bind_tools(tools, tool_choice="none")
        limit = self.max_tokens.get(node)
        return self._call(node, lambda: bound.invoke(messages, **_limit(limit)), usage)

    # -- requests -----------------------------------------------------------------------------
    def _call(self, node: str, call: Callable[[], AIMessage], usage: Usage) -> tuple[AIMessage, Usage]:
        """A request whose usage joins ``usage`` (what the node spent before); a failed
        request counts too."""
        try:
            raw = self._request(node, call)
        except LLMError as exc:
            exc.usage = add(usage, exc.usage)
            raise
        return raw, add(usage, usage_of(raw))

    def _request(self, node: str, call: Callable[[], AIMessage]) -> AIMessage:
        """The one place a client error becomes an ``LLMError`` message."""
        try:
            return call()
        except openai.APIError as exc:
            # The key and any credential in the endpoint's URL are redacted here (an endpoint
            # may echo them), and the client's exception, which holds the raw text, is not
            # chained, so no traceback or checkpoint error write can carry it.
            secret = getattr(self.chat, "openai_api_key", None)
            secrets = [secret.get_secret_value() if secret else None, *url_secrets(getattr(self.chat, "openai_api_base", None))]
            message = redact(_describe(exc), secrets)
            status = getattr(exc, "status_code", None)
            raise LLMError(f"{node}: {type(exc).__name__}: {message[:240]}", ONE_FAILED_CALL, status) from None


CUT_OFF = "it was cut off at the limit"
STRICT_UNSUPPORTED = frozenset({"minLength", "maxLength"})


def _without_keys(schema: Any, keys: frozenset[str], names: bool = False) -> Any:
    """A JSON schema with the keywords ``keys`` left out at every level; ``names``: ``schema``
    maps names to schemas (``properties``, ``$defs``), and a property may be named like a keyword."""
    if isinstance(schema, list):
        return [_without_keys(s, keys) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if names:
        return {name: _without_keys(sub, keys) for name, sub in schema.items()}
    return {k: _without_keys(v, keys, names=k in ("properties", "$defs")) for k, v in schema.items() if k not in keys}


def _unusable(problem: str, limit: int | None) -> str:
    """Why a node's answer stayed unusable, for its error or degraded entry."""
    if problem.startswith(CUT_OFF):
        return f"the reply was cut off at max_tokens ({limit}), also after a repair asking for less"
    return f"malformed answer after one repair attempt ({problem})"


def _limit(max_tokens: int | None) -> dict[str, int]:
    return {"max_tokens": max_tokens} if max_tokens else {}


def _joined(thoughts: list[str]) -> str:
    return "\n\n".join(t for t in thoughts if t)


def _without_reasoning(message: AIMessage) -> AIMessage:
    """A reply as it goes back into the history: without its ``reasoning_content`` (a
    server-side field that requests do not carry)."""
    kwargs = {k: v for k, v in message.additional_kwargs.items() if k != "reasoning_content"}
    return message.model_copy(update={"additional_kwargs": kwargs})


def _repair(problem: str, call_ids: dict[str, str]) -> list[BaseMessage]:
    """The repair request: one tool message per call id, or a user message when the reply
    called no tool."""
    if not call_ids:
        return [HumanMessage(prompts.render("repair", problem=problem))]
    # A cut-off reply's problem applies to every call; otherwise each call gets its own.
    return [ToolMessage(prompts.render("repair", problem=problem if problem.startswith(CUT_OFF) else own),
                        tool_call_id=call_id, status="error")
            for call_id, own in call_ids.items()]


def parse_json_answer(text: str, schema: type[T]) -> tuple[T | None, str]:
    """The first JSON object in ``text`` that validates as ``schema``, else the problem.

    Replies come fenced, with prose around them, or as several objects (a draft, then the
    answer), so every top-level object is tried in order; a greedy regex would join them.
    """
    decoder = json.JSONDecoder()
    problem = "no JSON object found in the reply"
    start = text.find("{")
    while start != -1:
        try:
            found, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            problem = problem if "schema" in problem else f"invalid JSON ({exc.msg})"
            start = text.find("{", start + 1)
            continue
        try:
            return schema.model_validate(found), ""
        except ValidationError as exc:
            if "schema" not in problem:
                problem = f"the JSON did not match the schema: {_first_error(exc)}"
        start = text.find("{", end)
    return None, problem


def json_problem(text: str | None) -> str:
    """Why ``text`` is not JSON, in the decoder's words and position."""
    try:
        json.loads(text or "")
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at character {exc.pos}"
    return "not a JSON object"


def _first_error(exc: ValidationError) -> str:
    e = exc.errors()[0]
    return f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}"


def _describe(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    message = exc.message if isinstance(exc.message, str) else str(exc)
    if isinstance(exc, openai.APIResponseValidationError):
        return message  # it names the status already
    return f"HTTP {status}: {message}" if status else message


def chat_model(settings: Settings, **client_options) -> ChatEndpoint:
    """The chat client of ``settings``; its HTTP clients check that every reply is a chat
    completion (``response_checks``). Tests pass their own (respx-mocked) clients, with the
    same checks."""
    limiter = (
        InMemoryRateLimiter(requests_per_second=settings.requests_per_second, check_every_n_seconds=0.01)
        if settings.requests_per_second
        else None
    )
    client_options.setdefault("http_client", openai.DefaultHttpxClient(event_hooks=response_checks()))
    client_options.setdefault("http_async_client", openai.DefaultAsyncHttpxClient(event_hooks=response_checks(True)))
    return ChatEndpoint(
        model=settings.model,
        base_url=settings.base_url,
        # Local servers (vLLM, Ollama, llama.cpp) need no key, but the client insists on one.
        api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
        # A request given up on closes its connection, and llama-server, vLLM and Ollama stop
        # generating for a closed connection: a timed-out sample does not hold the server.
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        temperature=0,
        use_responses_api=False,
        rate_limiter=limiter,
        **client_options,
    )


def make_llm(settings: Settings, **client_options) -> LLM | None:
    """The configured LLM, or None when the run is KG-only."""
    if not settings.llm_configured:
        return None
    return LLM(chat_model(settings, **client_options), settings.structured_output, settings.strict_schemas,
               settings.max_tokens)
