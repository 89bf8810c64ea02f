"""The repository's Dockerfile read as stages (dockerfile-parse gives its instructions, not how stages
inherit): what a target image inherits, and its environment with the build arguments' defaults filled in."""

from __future__ import annotations

import re
import shlex
from typing import Any

from dockerfile_parse import DockerfileParser

from support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
Instruction = dict[str, Any]
# ${NAME} and ${NAME:+word}: the two forms of substitution the Dockerfile's ENV lines use.
_SUBSTITUTION = re.compile(r"\$\{(\w+)(?::\+([^}]*))?\}")


def instructions() -> list[Instruction]:
    return DockerfileParser(path=str(DOCKERFILE)).structure


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def from_line(stage: list[Instruction]) -> tuple[str, str]:
    """(base, stage name) of `FROM base AS name`."""
    base, _, name = stage[0]["value"].split()
    return base, name


def named(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    return {from_line(stage)[1]: stage for stage in stages(instructions)}


def values(stage: list[Instruction], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def lineage(instructions: list[Instruction], target: str) -> list[list[Instruction]]:
    """The target stage and the stages it is built FROM, the oldest first: an image inherits their config."""
    by_name = named(instructions)
    chain = [by_name[target]]
    while from_line(chain[0])[0] in by_name:
        chain.insert(0, by_name[from_line(chain[0])[0]])
    return chain


def inherited(instructions: list[Instruction], target: str, name: str) -> list[str]:
    return [value for stage in lineage(instructions, target) for value in values(stage, name)]


def env(instructions: list[Instruction], target: str) -> dict[str, str]:
    """The target's ENV as written (``${...}`` left as is)."""
    found: dict[str, str] = {}
    for value in inherited(instructions, target, "ENV"):
        found.update(item.split("=", 1) for item in shlex.split(value))
    return found


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults ("" where none is given)."""
    first_from = min(i["startline"] for i in instructions if i["instruction"] == "FROM")
    pairs = [i["value"].partition("=") for i in instructions if i["instruction"] == "ARG" and i["startline"] < first_from]
    return {name: default for name, _, default in pairs}


def image_env(instructions: list[Instruction], target: str, build_args: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a container of ``target`` starts with, built with ``build_args`` (else the defaults)."""
    args = {**global_args(instructions), **(build_args or {})}

    def substitute(match: re.Match[str]) -> str:
        value = args.get(match.group(1), "")
        return (match.group(2) if value else "") if match.group(2) is not None else value

    return {name: _SUBSTITUTION.sub(substitute, value) for name, value in env(instructions, target).items()}
