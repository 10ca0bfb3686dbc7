"""Secrets are removed from error texts, whole or cut short, configured or merely key-shaped."""

from agent.redaction import REDACTED, redact

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
