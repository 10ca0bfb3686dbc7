"""Typed questions: options, a known answer and plain text told apart."""

from agent.inspection.questions import parse_question

QUESTION = "A traveller returns with fever, splenomegaly and anemia. Which drug? A) chloroquine B) metformin"


def test_parse_question_forms():
    q = parse_question(QUESTION)
    assert q.question == "A traveller returns with fever, splenomegaly and anemia. Which drug?"
    assert q.options == {"A": "chloroquine", "B": "metformin"} and q.answer is None
    q = parse_question("Which drug?\nA. chloroquine\nB. metformin\nAnswer: B")
    assert q.options == {"A": "chloroquine", "B": "metformin"} and (q.answer_idx, q.answer) == ("B", "metformin")
    q = parse_question("Which drug? (A) chloroquine (B) metformin\nAnswer: chloroquine")
    assert (q.answer_idx, q.answer) == ("A", "chloroquine")
    q = parse_question("Vitamin A. deficiency causes what?\nAnswer: night blindness")
    assert q.options == {} and q.answer == "night blindness"
