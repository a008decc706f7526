"""The openai teacher: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, or a local
llama.cpp server: `local`), through the official SDK."""
from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

from ..data import CotlibError
from ..prompts import STOP
from .base import Choice, Request, Result, Usage

class RetryableError(Exception):
    """A fault worth retrying: 429, 5xx, timeout, dropped connection, malformed body."""


class RequestFailed(Exception):
    """A request the endpoint refused for itself (e.g. 400: prompt too long); not retried."""


@dataclass
class OpenAITeacher:
    """A teacher behind the official `openai` SDK: OpenAI, vLLM, Ollama, llama.cpp, ...

    The key is read from the environment variable named `key_env` and kept only in the
    client object; it is never logged or written.
    """
    model: str
    base_url: str | None = None
    key_env: str = "OPENAI_API_KEY"
    api: str = "completions"  # or "chat"
    template: str = "plain"  # how the completions API sees a prompt: plain or chatml
    workers: int = 4
    timeout: float = 120.0
    retries: int = 5
    backoff: float = 1.0  # mean wait (s) before the first retry; doubles each time
    price: tuple[float, float] = (0.0, 0.0)
    name: str = ""
    needs_key: bool = True
    group_size: int = 1
    n_supported: bool | None = None  # learnt from the first n>1 request
    usage: Usage = field(init=False)

    def __post_init__(self):
        if self.api not in ("completions", "chat"):
            raise CotlibError(f"api {self.api!r}: choose completions or chat")
        if self.template not in STOP:
            raise CotlibError(f"template {self.template!r}: choose from {', '.join(STOP)}")
        if self.workers < 1:
            raise CotlibError(f"concurrency {self.workers} must be >= 1")
        self.name = self.name or self.model
        self.usage = Usage(self.price)
        self._client = None
        self._lock = threading.Lock()
        self._checked = False

    def _key(self) -> str:
        key = os.environ.get(self.key_env)
        if key:
            return key
        if self.needs_key:
            raise CotlibError(f"environment variable {self.key_env} is not set; it must hold "
                              f"the API key for {self.base_url or 'the OpenAI API'}")
        return "unused"  # local servers ignore it, the SDK wants one

    def client(self):
        if self._client is None:
            import openai  # noqa: PLC0415  (only teachers that call an API need it)
            self._client = openai.OpenAI(api_key=self._key(), base_url=self.base_url,
                                         max_retries=0, timeout=self.timeout)
        return self._client

    def check(self) -> None:
        """Before any work: the key is set and the endpoint answers (asked once)."""
        import openai  # noqa: PLC0415
        if self._checked:
            return
        client = self.client()
        where = self.base_url or "the OpenAI API"
        try:
            client.with_options(timeout=min(self.timeout, 15)).models.list()
        except openai.AuthenticationError:
            raise CotlibError(f"{where} rejected the key in ${self.key_env}") from None
        except openai.APITimeoutError:
            pass  # it accepted the connection but is busy (a one-request server mid-answer)
        except openai.APIConnectionError as e:
            message = self._redact(f"cannot reach the teacher endpoint {where}: {e}")
            raise CotlibError(message) from None
        except openai.APIStatusError:
            pass  # some servers have no /models; the endpoint answered, which is enough
        self._checked = True

    def _redact(self, text: str) -> str:
        """Error text as it may be stored or printed: some servers repeat the Authorization
        header (the key) in their error bodies."""
        key = os.environ.get(self.key_env)
        return text.replace(key, "***") if key else text

    def complete(self, requests: list[Request]) -> list[Result]:
        return [self._complete(r) for r in requests]

    def _complete(self, request: Request) -> Result:
        stop = STOP[self.template] if self.api == "completions" else None
        choices: list[Choice] = []
        while len(choices) < len(request.seeds):
            want = len(request.seeds) - len(choices)
            n = want if self.n_supported is not False else 1
            try:
                got = self._call(request, n, request.seeds[len(choices)], stop)
            except (RetryableError, RequestFailed) as e:
                return Result(choices, str(e))
            if n > 1:
                with self._lock:  # llama.cpp's server answers n>1 with one choice
                    self.n_supported = len(got) >= n
            choices += got[:n]
        return Result(choices)

    def _call(self, request: Request, n: int, seed: int, stop: list[str] | None) -> list[Choice]:
        for attempt in range(self.retries + 1):
            try:
                return self._once(request, n, seed, stop)
            except RetryableError as e:
                kind, retry_after = e.args[0], e.args[1] if len(e.args) > 1 else 0.0
                last = attempt == self.retries
                self.usage.fault(kind, retried=not last)
                if last:
                    raise RetryableError(f"{kind}, {attempt + 1} attempts") from None
                wait_s = self.backoff * 2**attempt * random.uniform(0.5, 1.5)  # jitter
                time.sleep(min(60.0, max(wait_s, retry_after)))
        raise AssertionError("unreachable")

    def _once(self, request: Request, n: int, seed: int, stop: list[str] | None) -> list[Choice]:
        import openai  # noqa: PLC0415
        common = dict(model=self.model, n=n, temperature=request.temperature,
                      max_tokens=request.max_tokens, seed=seed)
        try:
            if self.api == "chat":
                response = self.client().chat.completions.create(
                    messages=request.prompt.messages(), **common)
                texts = [(c.message.content, c.finish_reason) for c in response.choices]
            else:
                response = self.client().completions.create(
                    prompt=request.prompt.render(self.template), stop=stop, **common)
                texts = [(c.text, c.finish_reason) for c in response.choices]
        except openai.APITimeoutError:
            raise RetryableError("timeout") from None
        except openai.APIConnectionError:
            raise RetryableError("connection") from None
        except openai.RateLimitError as e:
            raise RetryableError("429", _retry_after(e)) from None
        except openai.APIStatusError as e:
            if e.status_code >= 500:
                raise RetryableError(f"{e.status_code}") from None
            if e.status_code in (401, 403, 404):  # every request would fail: stop the run
                raise CotlibError(self._redact(f"{self.base_url or 'the OpenAI API'} refused the "
                                               f"request ({e.status_code}): {e.message}")) from None
            self.usage.fault(str(e.status_code), retried=False)
            raise RequestFailed(self._redact(f"{e.status_code}: {e.message}")[:300]) from None
        except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError):
            raise RetryableError("malformed") from None
        if not texts or any(not isinstance(t, str) for t, _ in texts):
            raise RetryableError("malformed")
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        self.usage.add(prompt_tokens, completion_tokens)
        share = len(texts)  # usage covers all n choices; each record gets its share
        return [Choice(t, r or "", prompt_tokens // share, completion_tokens // share)
                for t, r in texts]


def _retry_after(error) -> float:
    try:
        return float(error.response.headers.get("retry-after", 0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


LOCAL_URL = "http://127.0.0.1:8080/v1"


def local_teacher(model: str, base_url: str = LOCAL_URL, **options) -> OpenAITeacher:
    """A model served on 127.0.0.1 by `python -m cotlib serve` (llama.cpp).

    One request per completion (distinct seeds): llama-cpp-python's server ignores n > 1,
    and llama-server's usage counts the tokens of one choice only.
    """
    from ..serve import get_model  # noqa: PLC0415
    spec = get_model(model)
    return OpenAITeacher(model=spec.name, base_url=base_url, template=spec.template,
                         needs_key=False, key_env="COTLIB_LOCAL_KEY", name=spec.name,
                         **{"n_supported": False, **options})

