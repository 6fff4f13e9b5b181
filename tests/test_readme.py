from pathlib import Path

from jobsim_app.settings_doc import END, START, table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_every_setting():
    text = README.read_text(encoding="utf-8")
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert documented == table(), "run: .venv/bin/python -m jobsim_app.settings_doc --write"


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci and "./scripts/test.sh" in README.read_text(encoding="utf-8")
