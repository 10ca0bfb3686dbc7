"""LLM access: any OpenAI-compatible endpoint through ChatOpenAI, behind a thin interface.

``LLM`` is what nodes use: structured answers validated against a pydantic schema (by tool
calling, or by JSON in plain text for servers without it), free text, and single tool-calling
rounds; each call's token usage is returned with its result. A malformed answer gets one
repair request; if that fails too, or the endpoint keeps failing after the client's own
retries (429, 5xx, timeouts only), the node fails with ``LLMError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Literal, TypeVar

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from pydantic import BaseModel, ValidationError

import prompts
from agent.config import Settings
from agent.redaction import redact
from agent.state import Usage, add_usage as add

T = TypeVar("T", bound=BaseModel)
StructuredMode = Literal["tools", "text"]
# Reasoning models (DeepSeek-R1, Qwen3, gpt-oss) think in a tagged block before answering;
# some chat templates open the block in the prompt, so a reply may hold only its end.
_THINKING = re.compile(r"<(think|thinking)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_THINKING_END = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_THINKING_START = re.compile(r"<think(?:ing)?>", re.IGNORECASE)


def failure_message(exc: BaseException) -> str:
    """What a failed sample or chat turn reports: an ``LLMError``'s own message (it names the
    node and is redacted), any other failure with its type."""
    return str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"


class LLMError(RuntimeError):
    """An LLM call failed for good; the message names the node and the cause. ``usage``
    counts every request made for it, so a failed sample's calls still reach the totals."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or NO_USAGE


NO_USAGE = Usage(llm_calls=0, input_tokens=0, output_tokens=0, repairs=0)
ONE_FAILED_CALL = Usage(llm_calls=1, input_tokens=0, output_tokens=0, repairs=0)
ONE_REPAIR = Usage(llm_calls=0, input_tokens=0, output_tokens=0, repairs=1)


def usage_of(message: AIMessage) -> Usage:
    meta = message.usage_metadata or {}
    return Usage(llm_calls=1, input_tokens=meta.get("input_tokens", 0), output_tokens=meta.get("output_tokens", 0), repairs=0)


def strip_thinking(text: str) -> str:
    """``text`` without a reasoning model's thinking, which may hold braces, "Conclusion:"
    and option letters; an unclosed block (thinking cut off) leaves nothing."""
    text = _THINKING.sub("", text)
    text = _THINKING_END.split(text)[-1]
    return _THINKING_START.split(text)[0].strip()


def content_of(message: AIMessage) -> str:
    """A reply's visible answer: its text without thinking (``reasoning_content`` beside the
    content is dropped by the client already)."""
    content = message.content
    if isinstance(content, list):  # some servers send content as a list of text parts
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return strip_thinking(content or "")


class LLM:
    def __init__(self, chat: BaseChatModel, structured: StructuredMode = "tools", strict: bool = False) -> None:
        self.chat = chat
        self.structured_mode = structured
        self.strict = strict  # closed schemas with every property required; the server enforces them

    def structured(self, node: str, schema: type[T], prompt: str) -> tuple[T, Usage]:
        """A validated ``schema`` instance for ``prompt``, with one repair request that
        states the exact problem; every request counts in the usage, repairs also apart."""
        messages: list[BaseMessage] = [HumanMessage(prompt)]
        ask = self._ask_tools if self.structured_mode == "tools" else self._ask_text
        usage = NO_USAGE
        for attempt in range(2):
            if attempt:
                usage = add(usage, ONE_REPAIR)
            raw, usage = self._call(node, lambda: ask(schema, messages), usage)
            parsed, problem, repair = (
                self._read_tool_calls(raw, schema) if self.structured_mode == "tools" else self._read_text(raw, schema)
            )
            if parsed is not None:
                return parsed, usage
            messages += [raw, *repair]
        raise LLMError(f"{node}: malformed answer after one repair attempt ({problem})", usage)

    def _ask_tools(self, schema: type[BaseModel], messages: list[BaseMessage]) -> AIMessage:
        # One tool, forced by name: ``parallel_tool_calls`` is not needed, and some servers
        # reject it, so it is not sent.
        return self.chat.bind_tools([schema], tool_choice=schema.__name__, strict=self.strict or None).invoke(messages)

    @staticmethod
    def _read_tool_calls(raw: AIMessage, schema: type[T]) -> tuple[T | None, str, list[BaseMessage]]:
        """The first call of ``schema`` whose arguments validate; otherwise the problem and
        the repair: one tool message per call id (OpenAI refuses any other message before
        them), or a user message when the reply called no tool."""
        problems: dict[str, str] = {}
        for call in raw.tool_calls:
            if call["name"] != schema.__name__:
                problems[call["id"]] = f"unknown tool {call['name']!r}; call {schema.__name__}"
                continue
            try:
                return schema.model_validate(call["args"]), "", []
            except ValidationError as exc:
                problems[call["id"]] = f"the arguments did not match the schema: {_first_error(exc)}"
        for bad in raw.invalid_tool_calls:
            problems[bad["id"]] = f"the arguments are not valid JSON ({json_problem(bad.get('args'))})"
        if not problems:
            # Servers whose tool-call parser missed the call leave its JSON in the content.
            parsed, problem = parse_json_answer(content_of(raw), schema)
            if parsed is not None:
                return parsed, "", []
            problem = f"the reply called no tool ({problem}); call {schema.__name__}"
            return None, problem, [HumanMessage(prompts.render("repair", problem=problem))]
        repair = [
            ToolMessage(prompts.render("repair", problem=problem), tool_call_id=call_id, status="error")
            for call_id, problem in problems.items()
        ]
        return None, next(iter(problems.values())), repair

    def _ask_text(self, schema: type[BaseModel], messages: list[BaseMessage]) -> AIMessage:
        instruction = prompts.render("json_instruction", schema=json.dumps(schema.model_json_schema()))
        return self.chat.invoke([HumanMessage(messages[0].content + instruction), *messages[1:]])

    @staticmethod
    def _read_text(raw: AIMessage, schema: type[T]) -> tuple[T | None, str, list[BaseMessage]]:
        parsed, problem = parse_json_answer(content_of(raw), schema)
        return parsed, problem, [] if parsed else [HumanMessage(prompts.render("repair", problem=problem))]

    def text(self, node: str, prompt: str, check: Callable[[str], str | None] = lambda t: None) -> tuple[str, Usage]:
        """Free text for ``prompt``, thinking stripped; ``check`` returns a problem to repair
        once, or None."""
        messages: list[BaseMessage] = [HumanMessage(prompt)]
        usage = NO_USAGE
        for attempt in range(2):
            if attempt:
                usage = add(usage, ONE_REPAIR)
            raw, usage = self._call(node, lambda: self.chat.invoke(messages), usage)
            content = content_of(raw)
            problem = "the reply was empty" if not content else check(content)
            if problem is None:
                return content, usage
            messages += [raw, HumanMessage(prompts.render("repair", problem=problem))]
        raise LLMError(f"{node}: malformed answer after one repair attempt ({problem})", usage)

    def tool_round(
        self, node: str, messages: list[BaseMessage], tools: list, usage: Usage, allow_calls: bool = True
    ) -> tuple[AIMessage, Usage]:
        """One request offering ``tools``; the model may call several (each answered by the
        caller), so ``parallel_tool_calls`` is not sent. ``allow_calls=False`` asks for a
        closing message (``tool_choice="none"``; the tools stay, as the history uses them)."""
        bound = self.chat.bind_tools(tools) if allow_calls else self.chat.bind_tools(tools, tool_choice="none")
        return self._call(node, lambda: bound.invoke(messages), usage)

    def _call(self, node: str, call: Callable[[], AIMessage], usage: Usage) -> tuple[AIMessage, Usage]:
        """The one place a client error becomes an ``LLMError`` message; ``usage`` is what
        the node spent before, and the failed request counts too."""
        try:
            raw = call()
        except openai.APIError as exc:
            # The key is redacted here (an endpoint may echo it), and the client's exception,
            # which holds the raw text, is not chained, so no traceback or checkpoint error
            # write can carry it.
            secret = getattr(self.chat, "openai_api_key", None)
            message = redact(_describe(exc), [secret.get_secret_value() if secret else None])
            raise LLMError(f"{node}: {type(exc).__name__}: {message[:200]}", add(usage, ONE_FAILED_CALL)) from None
        return raw, add(usage, usage_of(raw))


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
    return f"HTTP {status}: {message}" if status else message


def make_llm(settings: Settings, **client_options) -> LLM | None:
    """The configured LLM, or None when the run is KG-only."""
    if not settings.llm_configured:
        return None
    from langchain_openai import ChatOpenAI

    limiter = (
        InMemoryRateLimiter(requests_per_second=settings.requests_per_second, check_every_n_seconds=0.01)
        if settings.requests_per_second
        else None
    )
    chat = ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url,
        # Local servers (vLLM, Ollama, llama.cpp) need no key, but the client insists on one.
        api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        temperature=0,
        use_responses_api=False,
        rate_limiter=limiter,
        **client_options,
    )
    return LLM(chat, settings.structured_output, settings.strict_schemas)
