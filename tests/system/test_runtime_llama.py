"""runtime.supervisor drives the real llama-server with the real SmolLM2-135M file.

One load (1 thread, context 512, as CPU contention needs), the checks a real GGUF passes
(header, sidecar sha256, metadata-based memory estimate), a chat answer with tokens, the
context read back from llama-server's /props, and unload/close leaving no llama-server.
`LLAMA_SERVER_PATH` names another binary, as on aiOS.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime import files, llama
from runtime.supervisor import LoadParams, Supervisor
from tests.system.test_llama_server import llama_server, smollm2


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def link_model(models: Path) -> Path:
    """SmolLM2 under a routing-friendly name, with the sidecar model.fetch would write."""
    models.mkdir()
    model = models / "smollm2-135m-instruct.gguf"
    model.symlink_to(smollm2())
    files.sidecar(model).write_text(files.sha256_file(model) + "\n")
    return model


async def test_the_supervisor_serves_smollm2_with_the_real_llama_server(tmp_path: Path) -> None:
    model = link_model(tmp_path / "models")
    sup = Supervisor(
        model_dir=tmp_path / "models",
        state_dir=tmp_path / "state",
        llama_server=str(llama_server()),
        health_interval=0.5,
    )
    await sup.start()
    pid = 0
    try:
        info = await sup.load(LoadParams("smollm2-135m-instruct", str(model), 512, 1, 0))
        pid = info.pid
        log = (tmp_path / "state" / "logs" / "smollm2-135m-instruct.log").read_text()
        assert info.status == "ready", f"{info}\n{log[-3000:]}"
        assert info.sha256 == files.sha256_file(model)
        assert os.getpgid(pid) == pid
        props = await llama.props(info.port)
        assert props["default_generation_settings"]["n_ctx"] == 512
        text, tokens = await llama.chat(
            info.port,
            system="You answer in JSON.",
            prompt='Reply with {"capital": "<the capital of France>"}',
            max_tokens=24,
            temperature=0.1,
            json_object=True,
        )
        assert text.strip().startswith("{"), text
        assert tokens > 0
        streamed = [
            d
            async for d in llama.stream_chat(
                info.port, system="", prompt="Say hello.", max_tokens=8, temperature=0.1
            )
        ]
        assert streamed and "".join(streamed).strip()
        await sup.unload("smollm2-135m-instruct")
        assert gone(pid)
    finally:
        await sup.close()
    assert not pid or gone(pid)
