import pytest

from companion.exercises import check, get_exercise, list_exercises, load_quiz, quiz
from companion.exercises._registry import exercise


@pytest.mark.parametrize("exercise_id", list_exercises())
def test_every_solution_passes_its_grader(exercise_id, capsys):
    assert check(exercise_id, get_exercise(exercise_id).solution) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", list_exercises())
def test_a_wrong_answer_gets_a_hint_not_an_exception(exercise_id, capsys):
    assert check(exercise_id, None) is False
    assert check(exercise_id, lambda *args, **kwargs: None) is False
    out = capsys.readouterr().out
    assert out.count("✗") == 2 and "Hint:" in out


def test_unknown_ids_raise():
    with pytest.raises(KeyError, match="Expected `exercise_id` to be one of"):
        check("no-such-exercise", 1)
    with pytest.raises(KeyError, match="Expected `section_id` to be one of"):
        load_quiz("9.9")


def test_ids_are_unique():
    with pytest.raises(ValueError, match="an id not registered yet"):
        exercise("4.0-sgd-step", "again", solution=None)(lambda answer: None)


def test_quiz_renders_html(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("jupyterquiz.display_quiz", lambda ref, **kw: shown.append(ref))
    quiz("4.0")
    assert shown and shown[0] == load_quiz("4.0")
