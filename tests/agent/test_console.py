"""The run's progress when its output goes to a log file rather than a terminal."""

import io
import re
import time

from rich.console import Console

from agent.console import RunProgress


def test_a_log_gets_plain_progress_lines_at_a_steady_interval_and_at_the_end():
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=200)
    with RunProgress(10, {"accepted": 2}, console=console, interval=0.05) as progress:
        for status in ("accepted", "rejected", "error"):
            progress({"status": status})
        time.sleep(0.3)  # no sample finishes meanwhile: the line still comes
    lines = log.getvalue().splitlines()
    assert len(lines) >= 3  # several ticks and the final line
    assert "\x1b" not in log.getvalue()  # no bar, no escape codes in the log
    assert lines[-1].startswith("Samples 5/10 (50%): 3 accepted, 1 rejected, 1 errors; ")
    rate, hours, minutes, seconds = re.search(r"; ([\d.,]+)/min, ETA (\d+):(\d\d):(\d\d)$", lines[-1]).groups()
    assert float(rate.replace(",", "")) > 0 and int(hours) == int(minutes) == 0 and int(seconds) < 5


def test_a_terminal_gets_the_live_bar_instead():
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    with RunProgress(3, console=console, interval=0.01) as progress:
        progress({"status": "accepted"})
        time.sleep(0.05)
    assert "Samples 1/3 (33%)" not in console.file.getvalue()
    assert progress.bar is not None and progress.counts["accepted"] == 1
