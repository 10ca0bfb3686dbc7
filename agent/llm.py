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
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from pydantic import BaseModel, ValidationError

import prompts
from agent.config import Settings
from agent.redaction import redact
from agent.state import Usage

T = TypeVar("T", bound=BaseModel)
StructuredMode = Literal["tools", "text"]
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class LLMError(RuntimeError):
    """An LLM call failed for good; the message names the node and the cause."""


def usage_of(message: AIMessage | None) -> Usage:
    meta = (message.usage_metadata if message is not None else None) or {}
    return Usage(llm_calls=1, input_tokens=meta.get("input_tokens", 0), output_tokens=meta.get("output_tokens", 0))


def add(a: Usage, b: Usage) -> Usage:
    return Usage(**{k: a[k] + b[k] for k in a})  # type: ignore[misc]


NO_USAGE = Usage(llm_calls=0, input_tokens=0, output_tokens=0)


class LLM:
    def __init__(self, chat: BaseChatModel, structured: StructuredMode = "tools") -> None:
        self.chat = chat
        self.structured_mode = structured

    def structured(self, node: str, schema: type[T], prompt: str) -> tuple[T, Usage]:
        """A validated ``schema`` instance for ``prompt``, with one repair attempt."""
        messages: list[BaseMessage] = [HumanMessage(prompt)]
        ask = self._ask_tools if self.structured_mode == "tools" else self._ask_text
        usage = NO_USAGE
        for _ in range(2):
            raw, parsed, problem = ask(node, schema, messages)
            usage = add(usage, usage_of(raw))
            if parsed is not None:
                return parsed, usage
            messages += [raw or AIMessage(""), HumanMessage(prompts.render("repair", problem=problem))]
        raise LLMError(f"{node}: malformed answer after one repair attempt ({problem})")

    def _ask_tools(self, node, schema, messages):
        runnable = self.chat.with_structured_output(schema, method="function_calling", include_raw=True)
        try:
            out = self._call(node, lambda: runnable.invoke(messages))
        except ValidationError as exc:
            return None, None, f"the answer did not match the schema: {_first_error(exc)}"
        if out["parsed"] is None:
            problem = out["parsing_error"] or f"no valid {schema.__name__} tool call"
            return out["raw"], None, str(problem)
        return out["raw"], out["parsed"], ""

    def _ask_text(self, node, schema, messages):
        instruction = (
            "\n\nReply with only a JSON object that matches this JSON schema:\n"
            + json.dumps(schema.model_json_schema())
        )
        first = messages[0]
        raw = self._call(node, lambda: self.chat.invoke([HumanMessage(first.content + instruction), *messages[1:]]))
        parsed, problem = parse_json_answer(raw.content if isinstance(raw.content, str) else "", schema)
        return raw, parsed, problem

    def text(self, node: str, prompt: str, check: Callable[[str], str | None] = lambda t: None) -> tuple[str, Usage]:
        """Free text for ``prompt``; ``check`` returns a problem to repair once, or None."""
        messages: list[BaseMessage] = [HumanMessage(prompt)]
        usage = NO_USAGE
        for _ in range(2):
            raw = self._call(node, lambda: self.chat.invoke(messages))
            usage = add(usage, usage_of(raw))
            content = raw.content if isinstance(raw.content, str) else ""
            problem = "the reply was empty" if not content.strip() else check(content)
            if problem is None:
                return content, usage
            messages += [raw, HumanMessage(prompts.render("repair", problem=problem))]
        raise LLMError(f"{node}: malformed answer after one repair attempt ({problem})")

    def tool_round(self, node: str, messages: list[BaseMessage], tools: list) -> tuple[AIMessage, Usage]:
        bound = self.chat.bind_tools(tools, parallel_tool_calls=False)
        raw = self._call(node, lambda: bound.invoke(messages))
        return raw, usage_of(raw)

    def _call(self, node: str, call):
        try:
            return call()
        except openai.APIError as exc:
            # The one place client errors become messages: the key is redacted here (an
            # endpoint may echo it), and the client's exception, which holds the raw text, is
            # not chained, so no traceback or checkpoint error write can carry it.
            secret = getattr(self.chat, "openai_api_key", None)
            message = redact(_describe(exc), [secret.get_secret_value() if secret else None])
            raise LLMError(f"{node}: {type(exc).__name__}: {message[:200]}") from None


def parse_json_answer(text: str, schema: type[T]) -> tuple[T | None, str]:
    """The first JSON object in ``text`` validated as ``schema``, else the problem."""
    match = _JSON_OBJECT.search(text)
    if not match:
        return None, "no JSON object found in the reply"
    try:
        return schema.model_validate(json.loads(match.group())), ""
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg})"
    except ValidationError as exc:
        return None, f"the JSON did not match the schema: {_first_error(exc)}"


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
    return LLM(chat, settings.structured_output)
