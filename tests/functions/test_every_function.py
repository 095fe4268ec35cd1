"""Every function ``functions/main.py`` names is served by functions-framework on each path it
declares, and each one is driven by a test module of this directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.adapters.cloud_tasks import TASK_FUNCTIONS as TASK_TARGETS
from functions import main
from tests.functions.calls import client, error
from tests.functions.conftest import Backend

HERE = Path(__file__).parent
HTTP_FUNCTIONS = sorted(
    name for name in main.FUNCTION_MODULES if hasattr(getattr(main, name), "routes")
)
TASK_FUNCTIONS = set(TASK_TARGETS.values())
README = Path(__file__).parents[2] / "README.md"
EVENT_FUNCTIONS = ["onstreamwritten"]


def routes_of(name: str) -> list[str]:
    return [re.sub(r"\{\w+\}", "x-1", pattern) for pattern in getattr(main, name).routes]


def test_the_functions_are_the_ones_the_readme_lists() -> None:
    """The README's endpoint table names each function (the repair tools as a group)."""
    table = README.read_text().split("## Endpoints", 1)[1].split("\n\n`GET", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")]
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row[1])}
    repair_tools = {
        n for n, module in main.FUNCTION_MODULES.items() if module.endswith("repair_tools")
    }
    assert named <= set(main.FUNCTION_MODULES)
    assert set(main.FUNCTION_MODULES) - repair_tools <= named | {"syncrecording"}
    assert set(HTTP_FUNCTIONS) >= TASK_FUNCTIONS


@pytest.mark.parametrize("name", sorted(set(HTTP_FUNCTIONS) - TASK_FUNCTIONS))
def test_every_path_of_a_function_is_served(backend: Backend, name: str) -> None:
    methods = ", ".join(getattr(main, name).methods)
    for path in routes_of(name):
        response = client(name).options(path)
        assert response.status_code == 204, (path, response.get_data(as_text=True))
        assert response.headers["Allow"] == methods
    error(client(name).get("/api/not-this-function"), 404, "not-found")


@pytest.mark.parametrize("name", sorted(TASK_FUNCTIONS))
def test_every_path_of_a_task_function_is_served_to_tasks_only(backend: Backend, name: str) -> None:
    for path in routes_of(name):
        error(client(name).post(path, json={}), 401, no_store=False)


@pytest.mark.parametrize("name", [*HTTP_FUNCTIONS, *EVENT_FUNCTIONS])
def test_every_function_is_driven_by_a_test_here(name: str) -> None:
    callers = (f'client("{name}")', "client(function)", f'event_client("{name}")')
    modules = [p for p in HERE.glob("test_*.py") if p.name != Path(__file__).name]
    mentioned = [
        p.name
        for p in modules
        if f'"{name}"' in p.read_text() and any(c in p.read_text() for c in callers)
    ]
    assert mentioned, f"no test in {HERE} drives {name}"
