"""Secrets are removed from error texts, whole or cut short, configured or merely key-shaped."""

from agent.redaction import REDACTED, public_url, redact, url_secrets
from agent.runs.fingerprint import endpoint

KEY = "sk-proj-Zx81QmW0aa5511ff"


def test_the_configured_key_is_removed_whole_and_cut_short():
    text = f"Incorrect API key provided: {KEY}. Also echoed truncated: {KEY[:11]}…"
    cleaned = redact(text, [KEY])
    assert KEY[:8] not in cleaned and cleaned.count(REDACTED) == 2
    assert cleaned.startswith("Incorrect API key provided: ")


def test_credential_shapes_are_removed_whoever_they_belong_to():
    text = ('Authorization: Bearer abc.DEF-123_x; {"api_key": "upstream-secret-99", "token": "t0k3n"} '
            "key sk-other0123456789 password=hunter2")
    cleaned = redact(text)
    for secret in ("abc.DEF-123_x", "upstream-secret-99", "t0k3n", "sk-other0123456789", "hunter2"):
        assert secret not in cleaned
    assert "Authorization: Bearer [REDACTED]" in cleaned and '"api_key": "[REDACTED]"' in cleaned


def test_ordinary_error_text_is_left_alone():
    text = "HTTP 500: upstream timed out after 30 s (model fake, 2 retries)"
    assert redact(text, [KEY, "not-needed"]) == text


def test_urls_are_recorded_without_password_query_or_fragment():
    url = "https://Proxy-User:pa55-w0rd@Gateway.example:8443/v1?api_key=q-s3cr3t&x=1#frag"
    assert public_url(url) == endpoint(url) == "https://gateway.example:8443/v1"
    assert public_url("postgresql://medreason:pa55-w0rd@127.0.0.1:5432/runs", keep_user=True) == \
        "postgresql://medreason@127.0.0.1:5432/runs"
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
    assert endpoint(None) == "the OpenAI API"
    assert url_secrets(url) == ["pa55-w0rd", "q-s3cr3t"]  # not x=1: "1" is in every message


def test_a_url_password_in_error_text_is_removed():
    cleaned = redact("cannot connect to http://user:pa55-w0rd@host:8000/v1 (refused)")
    assert "pa55-w0rd" not in cleaned and "http://user:[REDACTED]@host:8000/v1" in cleaned
