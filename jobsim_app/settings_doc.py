"""Markdown table of every setting (env name, default, meaning), for the README."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from jobsim.settings import Settings


def rows(model: type[BaseModel] = Settings, prefix: str = "JOBSIM_") -> Iterator[tuple[str, str, str]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from rows(annotation, f"{prefix}{name.upper()}__")
            continue
        default = info.default
        if default is PydanticUndefined or default is None:
            shown = "(unset)"
        elif hasattr(default, "get_secret_value"):
            shown = f"`{default.get_secret_value()}`"
        else:
            shown = f"`{default}`" if default != "" else "(see meaning)"
        yield f"{prefix}{name.upper()}", shown, info.description or ""


def table() -> str:
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    lines += [f"| `{n}` | {d} | {m} |" for n, d, m in rows()]
    return "\n".join(lines)


START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def update_readme(path: str = "README.md") -> None:
    """Rewrite the settings table between the README's markers."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{head}{START}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        update_readme()
    else:
        print(table())
