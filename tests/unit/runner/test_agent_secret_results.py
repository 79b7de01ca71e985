"""X2 in an agent run: what bash prints of a secret is masked in the tool result, also
when the result's cut or bash's 8 KB tail halves the value; a project whose secrets
cannot be opened fails its job with a message that holds no value."""

from __future__ import annotations

from pathlib import Path

from agent_fakes import AgentRig, FakeSandbox, ScriptedModel, tool

from puras_common.events.types import JobFailed, TextBlock, ToolResulted
from puras_runner.app.agent_tools import BASH_TAIL_BYTES, MAX_RESULT_CHARS
from puras_runner.app.ports import BashResult
from puras_runner.domain.secrets import SecretsUnavailable

SECRET = "s3cret-value-0123456789"


async def _bash_result(tmp_path: Path, output: str) -> str:
    session = FakeSandbox(commands={"run": BashResult(0, output)})
    model = ScriptedModel(tool("bash", {"command": "run"}), tool("set_output", {"answer": "x"}))
    rig = AgentRig(tmp_path, model, session=session, secrets={"TOKEN": SECRET})
    await rig.run()
    result = rig.log.events(ToolResulted)[0]
    block = result.content[0]
    assert isinstance(block, TextBlock)
    return block.text


async def test_a_value_across_the_results_cut_is_masked(tmp_path: Path) -> None:
    # The value starts 5 characters before the cut: neither half may show.
    head = "exit code: 0\n"
    pad = "x" * (MAX_RESULT_CHARS - len(head) - 5)
    text = await _bash_result(tmp_path, pad + SECRET + "y" * 100)
    assert SECRET[:5] not in text[len(head) + len(pad) - 1 :]
    assert SECRET not in text


async def test_a_value_the_bash_tail_cut_is_masked(tmp_path: Path) -> None:
    tail = SECRET[7:] + " " + "z" * (BASH_TAIL_BYTES - len(SECRET[7:]) - 1)
    text = await _bash_result(tmp_path, tail)
    assert text.startswith("exit code: 0\n*** z")
    assert SECRET[7:] not in text


class _Unopenable:
    async def secrets_for(self, project_id: str) -> dict[str, str]:
        raise SecretsUnavailable("the project has secrets, but this runner has no key")


async def test_secrets_that_cannot_be_opened_fail_the_job(tmp_path: Path) -> None:
    model = ScriptedModel(tool("set_output", {"answer": "x"}))
    rig = AgentRig(tmp_path, model)
    rig.engine.secrets = _Unopenable()
    await rig.run()
    (failed,) = rig.log.events(JobFailed)
    assert "no key" in failed.error
