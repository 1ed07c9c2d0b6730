"""`printforge design` and `printforge providers` as a person runs them: real processes, exit codes,
and a config that points the cloud providers at the local fake server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import trimesh

from tests.fakes.llm_server import FakeLLM, Step

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-NEVER-PRINTED-777"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra or {})
    return env


async def printforge(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop, so a fake server in this test keeps serving."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "printforge",
        "--data-dir",
        str(data_dir),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=_env(env),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 100)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.asyncio
async def test_calibration_cube_is_a_watertight_20mm_mesh(tmp_path: Path) -> None:
    out = tmp_path / "cube.stl"
    code, stdout, stderr = await printforge(
        "design", "a 20 mm calibration cube", "--out", str(out), data_dir=tmp_path / "d"
    )
    assert code == 0, stderr
    mesh = trimesh.load(out)
    assert mesh.is_watertight
    assert mesh.extents == pytest.approx([20, 20, 20], abs=0.1)
    assert "20 x 20 x 20 mm" in stdout and "offline/rules-v1" in stdout


@pytest.mark.asyncio
async def test_nonsense_exits_non_zero_with_one_clear_line(tmp_path: Path) -> None:
    code, stdout, stderr = await printforge(
        "design",
        "purple monkey dishwasher",
        "--out",
        str(tmp_path / "x.stl"),
        data_dir=tmp_path / "d",
    )
    assert code != 0 and stdout == ""
    lines = [line for line in stderr.splitlines() if line.startswith("printforge:")]
    assert len(lines) == 1 and "understood nothing" in lines[0] and "what kind of part" in lines[0]
    assert not (tmp_path / "x.stl").exists()


@pytest.mark.asyncio
async def test_clouds_down_completes_offline_and_json_says_why(tmp_path: Path) -> None:
    async with FakeLLM(openai=Step(status=500), anthropic=Step(status=503)) as fake:
        config = tmp_path / "llm.toml"
        config.write_text(
            "[llm.provider.openai]\n"
            f'base_url = "{fake.openai_base_url}"\n'
            "[llm.provider.anthropic]\n"
            f'base_url = "{fake.anthropic_base_url}"\n'
        )
        out = tmp_path / "washer.stl"
        code, stdout, stderr = await printforge(
            "--config",
            str(config),
            "design",
            "a washer 20 mm outer diameter, 8 mm hole, 2 mm thick",
            "--out",
            str(out),
            "--provider",
            "openai,anthropic,offline",
            "--json",
            data_dir=tmp_path / "d",
            env={"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET},
        )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["family"] == "washer" and summary["watertight"]
    assert summary["size_mm"] == pytest.approx([20, 20, 2], abs=0.1)
    research = summary["research"]
    assert research["provider"] == "offline"
    assert [r.split(":")[0] for r in research["fallbacks"]] == ["openai", "anthropic"]
    assert fake.calls("openai") >= 1 and fake.calls("anthropic") >= 1
    assert SECRET not in stdout + stderr


@pytest.mark.asyncio
async def test_providers_command_shows_limits_and_hides_keys(tmp_path: Path) -> None:
    config = tmp_path / "llm.toml"
    # A local server behind a proxy that takes credentials in its URL.
    config.write_text(
        '[llm.provider.local]\nbase_url = "http://me:PROXYPASS@127.0.0.1:9/v1"\n'
        '[llm.provider.anthropic]\nescalation_model = "claude-future-9"\n'
    )
    code, stdout, stderr = await printforge(
        "--config", str(config), "providers", "--json",
        data_dir=tmp_path / "d", env={"OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)
    rows = {r["name"]: r for r in data["providers"]}
    assert rows["local"]["base_url"] == "http://me:***@127.0.0.1:9/v1"
    # A paid model the price table lacks is flagged before a design is refused over it.
    assert rows["anthropic"]["unpriced_models"] == ["claude-future-9"]
    assert rows["openai"]["unpriced_models"] == [] and rows["local"]["unpriced_models"] == []
    assert "PROXYPASS" not in stdout + stderr
    assert data["order"] == ["offline"]
    assert rows["openai"]["key_set"] is True and rows["anthropic"]["key_set"] is False
    assert rows["openai"]["requests_per_minute"] == 500
    assert SECRET not in stdout + stderr


@pytest.mark.asyncio
async def test_providers_check_probes_each_provider(tmp_path: Path) -> None:
    async with FakeLLM() as fake:
        config = tmp_path / "llm.toml"
        config.write_text(
            "[llm.provider.openai]\n"
            f'base_url = "{fake.openai_base_url}"\n'
            "[llm.provider.local]\n"
            'base_url = "http://127.0.0.1:9/v1"\n'
            "timeout_s = 2\n"
        )
        code, stdout, stderr = await printforge(
            "--config",
            str(config),
            "providers",
            "--check",
            "--json",
            data_dir=tmp_path / "d",
            env={"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": ""},
        )
    assert code == 0, stderr
    rows = {r["name"]: r for r in json.loads(stdout)["providers"]}
    assert rows["openai"]["health"] == "healthy" and rows["offline"]["health"] == "healthy"
    assert rows["local"]["health"] != "healthy" and "cannot reach" in rows["local"]["last_error"]
    assert rows["anthropic"]["key_set"] is False and "no API key" in rows["anthropic"]["last_error"]
    assert SECRET not in stdout + stderr


@pytest.mark.asyncio
async def test_model_and_provider_are_honoured_exactly(tmp_path: Path) -> None:
    from printforge.llm.offline import parse_request

    cube = parse_request("a 20 mm calibration cube").model_dump(mode="json")
    async with FakeLLM(Step(answer=cube)) as fake:
        config = tmp_path / "llm.toml"
        config.write_text(
            f'[llm.provider.openai]\nbase_url = "{fake.openai_base_url}"\n'
            f'[llm.provider.anthropic]\nbase_url = "{fake.anthropic_base_url}"\n'
        )
        env = {"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET}

        async def design(*flags: str) -> tuple[int, str, str]:
            return await printforge(
                "--config", str(config), "design", "a 20 mm calibration cube",
                "--out", str(tmp_path / "c.stl"), "--json", *flags,
                data_dir=tmp_path / "d", env=env,
            )  # fmt: skip

        # A dated name is priced by its prefix and sent as written, to the first provider only.
        code, stdout, stderr = await design("--provider", "anthropic,openai", "--model",
                                            "claude-haiku-4-5-20251001")  # fmt: skip
        assert code == 0, stderr
        assert [r.body["model"] for r in fake.received] == ["claude-haiku-4-5-20251001"]
        research = json.loads(stdout)["research"]
        assert research["model"] == "claude-haiku-4-5-20251001" and research["cost_usd"] > 0

        # A model with no price is not run for free: refused, saying which row to add.
        code, stdout, stderr = await design("--provider", "openai", "--model", "gpt-9-preview")
        assert code == 1 and len(fake.received) == 1
        # --json: the refusal is the one object on stdout (issue 18's error contract).
        said = json.loads(stdout)["error"]["message"]
        assert "no price for model 'gpt-9-preview'" in said and "[llm.prices]" in said

        # The default order is the offline parser, which has no models: refused, not dropped.
        code, stdout, stderr = await design("--model", "gpt-4o")
        said = json.loads(stdout)["error"]["message"]
        assert code == 1 and "'gpt-4o' applies to the first provider" in said
        assert "--provider openai,offline" in said
    assert SECRET not in stdout + stderr


@pytest.mark.asyncio
async def test_debug_logs_never_show_a_password_in_a_base_url(tmp_path: Path) -> None:
    # httpx and the SDKs log request URLs at DEBUG/INFO; a proxy's user:password rides along.
    from printforge.llm.offline import parse_request

    cube = parse_request("a 20 mm calibration cube").model_dump(mode="json")
    async with FakeLLM(local=Step(answer=cube)) as fake:
        url = fake.local_base_url.replace("http://", "http://me:PROXYPASS99@")
        config = tmp_path / "llm.toml"
        config.write_text(f'[llm.provider.local]\nbase_url = "{url}"\nmodel = "qwen2.5-coder"\n')
        code, stdout, stderr = await printforge(
            "--debug", "--config", str(config), "design", "a 20 mm calibration cube",
            "--provider", "local", "--out", str(tmp_path / "c.stl"), "--json",
            data_dir=tmp_path / "d",
        )  # fmt: skip
    assert code == 0, stderr
    assert "HTTP Request: POST http://me:***@" in stderr  # the library did log the URL
    assert "PROXYPASS99" not in stdout + stderr


@pytest.mark.asyncio
async def test_what_cannot_be_built_is_asked_not_built(tmp_path: Path) -> None:
    # A plate's holes can be countersunk; magnet pockets are not something it makes.
    text = "a 60 x 40 x 4 mm plate with 2 countersunk M3 holes and a magnet pocket"
    out = tmp_path / "plate.stl"
    code, stdout, stderr = await printforge(
        "design", text, "--out", str(out), data_dir=tmp_path / "d"
    )
    assert code == 1 and not out.exists()
    question = stderr.splitlines()[0]
    assert question.startswith("printforge: ") and "magnet" in question
    assert "It would build plate with holes" in question and "--accept-partial" in question
    assert "NOT BUILT" in stderr and "countersunk" in stderr
    code, stdout, _ = await printforge(
        "design", text, "--out", str(out), "--json", data_dir=tmp_path / "d"
    )
    asked = json.loads(stdout)
    assert code == 1 and asked["needs_input"] is True and "magnet" in asked["question"]
    statuses = {r["text"]: r["status"] for r in asked["requirements"]}
    assert statuses["magnet"] == "not_built" and statuses["countersunk"] == "built"
    # Accepted as it is: built, saying what was left out, the requirements in the JSON.
    code, stdout, stderr = await printforge(
        "design", text, "--out", str(out), "--json", "--accept-partial", data_dir=tmp_path / "d"
    )
    assert code == 0, stderr
    done = json.loads(stdout)
    assert "Left out: magnet" in done["description"]
    assert {r["status"] for r in done["requirements"]} >= {"built", "not_built"}
    assert done["spec"]["parts"][0]["hole_style"] == "countersunk"
    assert trimesh.load(out).is_watertight


@pytest.mark.asyncio
async def test_requirements_are_shown(tmp_path: Path) -> None:
    out = tmp_path / "w.stl"
    code, stdout, stderr = await printforge(
        "design", "a washer 20 mm OD, 8 mm hole", "--out", str(out), data_dir=tmp_path / "d"
    )
    assert code == 0, stderr
    assert "requirements:" in stdout
    assert "built     20 mm od -> parts[0].outer_diameter" in stdout
    assert "assumed   thickness -> parts[0].thickness: thickness 1.5 mm" in stdout
