"""aios's local AI runtime: `aios runtime serve`, an `aios.runtime.AIRuntime` server.

Wire-compatible with aiOS's runtime (docs/aios-contract.md §4.5), with what aiOS's lacks:
changed parameters re-applied, crashed llama-servers restarted with backoff, no lock held
across a load, the file's GGUF header, sha256 sidecar and memory estimate checked before a
start, StreamInfer streamed as tokens arrive, on-demand models unloaded when idle.

- `supervisor`: one llama-server child per loaded model (its own process group, port and
  log), the per-model state machine, the background health and idle loop;
- `files`: the checks run on a model file before it is started (GGUF header, sidecar
  sha256, memory estimate against MemAvailable);
- `llama`: the httpx client of one llama-server (health, chat, streamed chat);
- `routing`: which model answers an Infer (model name, intelligence level);
- `server`: the grpc.aio servicers (AIRuntime, and RuntimeDetails.Describe of our own).

A server beside the registry: it imports only `contract` (its generated stubs); only
`reconciler.cli` (the `aios runtime serve` command) imports it.
"""
