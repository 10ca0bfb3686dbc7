"""reviews.jsonl and what ``export --reviewed`` / ``--only-reviewed`` take from it."""

import json

import pytest

from agent.runs.export import ExportError, ExportOptions, export_run
from agent.runs.reviews import REVIEWS, ReviewError, append_review, read_reviews, review_line


def exported(run_dir, tmp_path, **options) -> list[str]:
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}.jsonl"
    export_run(run_dir, "sft", out, ExportOptions(**options))
    return [json.loads(line)["messages"][0]["content"].split("\n")[0][:20] for line in out.read_text().splitlines()]


def test_export_respects_the_latest_review(reviewable_run, tmp_path):
    results = reviewable_run / "results.jsonl"  # scurvy rejected with reasoning, as an LLM run writes it
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    results.write_text("".join(json.dumps({**r, "reasoning": r["reasoning"] or "No path was found."}) + "\n" for r in rows))
    everything = exported(reviewable_run, tmp_path, include_all=True)
    assert len(everything) == 3  # malaria, scurvy, hostile (the malformed record has no question)
    malaria, scurvy, hostile = everything
    append_review(reviewable_run, review_line("malaria", "accept"))
    append_review(reviewable_run, review_line("scurvy", "reject", "no path"))
    append_review(reviewable_run, review_line("hostile/<b>id</b>", "flag"))
    append_review(reviewable_run, review_line("malaria", "reject", who="second reviewer"))  # the latest counts
    assert exported(reviewable_run, tmp_path, include_all=True, reviewed="not-rejected") == [hostile]
    assert exported(reviewable_run, tmp_path, include_all=True, reviewed="accepted") == []
    append_review(reviewable_run, review_line("scurvy", "accept"))
    assert exported(reviewable_run, tmp_path, include_all=True, reviewed="accepted") == [scurvy]
    # without --all only the run's accepted samples are candidates: a reviewer's accept does not add a rejected one
    assert scurvy not in exported(reviewable_run, tmp_path, reviewed="accepted")


def test_reviewed_export_of_an_unreviewed_run_says_so(reviewable_run, tmp_path):
    with pytest.raises(ExportError, match="no reviews yet"):
        export_run(reviewable_run, "sft", tmp_path / "out.jsonl", ExportOptions(reviewed="accepted"))
    assert not (tmp_path / "out.jsonl").exists()


def test_torn_last_line_is_skipped_and_a_bad_line_named(tmp_path):
    append_review(tmp_path, review_line("a", "accept"))
    with open(tmp_path / REVIEWS, "a") as f:
        f.write('{"id": "b", "deci')  # a crash mid-write
    assert list(read_reviews(tmp_path)) == ["a"]
    (tmp_path / REVIEWS).write_text('{"id": "a", "decision": "accept"}\nnot json\n')
    with pytest.raises(ReviewError, match="line 2"):
        read_reviews(tmp_path)
    with pytest.raises(ReviewError, match="unknown decision"):
        review_line("a", "approve")


def test_every_row_left_out_is_counted_by_its_reason_whatever_its_status(reviewable_run, tmp_path):
    """The four rows of the fixture run (malaria accepted but degraded, scurvy rejected, the
    hostile one accepted, the malformed one an error without a question), plus a status made
    by another step (``excluded``), which no option exports."""
    results = reviewable_run / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    excluded = {**rows[2], "id": "copied", "status": "excluded"}
    results.write_text("".join(json.dumps(r) + "\n" for r in [*rows, excluded]))
    out = lambda: tmp_path / f"out{len(list(tmp_path.glob('out*')))}.jsonl"  # noqa: E731

    done = export_run(reviewable_run, "sft", out())
    assert done.written == 1
    assert done.left_out == {"no question": 1, "status:rejected": 1, "degraded": 1, "status:excluded": 1}
    everything = export_run(reviewable_run, "huatuo", out(), ExportOptions(include_all=True))
    assert everything.left_out == {"no question": 1, "status:excluded": 1, "no reasoning": 1}  # --all never takes an excluded row

    append_review(reviewable_run, review_line("scurvy", "accept", "the verifier was wrong", "dr a"))
    append_review(reviewable_run, review_line("malaria", "reject"))
    only = export_run(reviewable_run, "sft", out(), ExportOptions(reviewed="accepted", include_degraded=True))
    assert only.written == 0 and only.left_out == {
        "no question": 1, "run rejected, reviewer accepted": 1, "review:reject": 1, "review:none": 1, "status:excluded": 1}
    assert sum(only.left_out.values()) + only.written == len(rows) + 1  # every row is accounted for
