"""Teachers: whatever writes answers for synthetic data — a local model or an OpenAI-compatible endpoint.

Both translate their library's errors into ours at this boundary, so ``synth.py`` only ever sees
``NotFound`` / ``InvalidInput`` / ``Unavailable``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from largeforge.errors import InvalidInput, NotFound, Unavailable


class Teacher(Protocol):
    name: str

    def complete(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int) -> str:
        """One answer to the conversation ``messages`` (the text of the assistant's next turn)."""
        ...


class LocalTeacher:
    """A Hugging Face model directory run with transformers on this machine."""

    def __init__(self, model_dir: str | Path) -> None:
        """Load the tokenizer and model; the model goes to the GPU when there is one.

        Raises:
            NotFound: ``model_dir`` does not exist.
            InvalidInput: transformers cannot load it, or its tokenizer has no chat template.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from largeforge.model_source import resolve_model_source

        source = resolve_model_source(model_dir)
        self.name = source
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            model: Any = AutoModelForCausalLM.from_pretrained(source, dtype="auto")
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(f"cannot load teacher model {source}: {exc}") from exc
        if not self._tokenizer.chat_template:
            raise InvalidInput(
                f"the tokenizer of {source} has no chat template, so it cannot answer a conversation; "
                "use a chat model as the teacher"
            )
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._model: Any = model.to(self._device).eval()

    def complete(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int) -> str:
        import torch

        encoded: Any = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        inputs = encoded.to(self._device)
        options: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            options["temperature"] = temperature
        else:
            # Greedy: clear the sampling knobs a chat model's generation_config often sets, which
            # transformers would otherwise warn about on every call.
            options.update(temperature=None, top_p=None, top_k=None)
        pad_id = self._tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self._tokenizer.eos_token_id
        with torch.inference_mode():
            output = self._model.generate(**inputs, **options, pad_token_id=pad_id)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self._tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


class EndpointTeacher:
    """Any OpenAI-compatible chat-completions endpoint (our own servers, or a provider).

    ``http_client`` is handed to the ``openai`` client as is; openai 3.x speaks ``httpx2``, so tests
    pass an ``httpx2.Client`` with a ``MockTransport`` there.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        http_client: Any | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        import openai

        from largeforge.settings import read_secret_env

        self.name = f"{model} @ {base_url}"
        self._model, self._base_url, self._api_key_env = model, base_url, api_key_env
        api_key = read_secret_env(api_key_env) if api_key_env else "EMPTY"  # local servers need no key
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            http_client=http_client,
            timeout=timeout,
            max_retries=max_retries,
        )

    def complete(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int) -> str:
        import openai

        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=messages,  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            source = (
                f"the key in ${self._api_key_env}" if self._api_key_env else "no key (pass --api-key-env)"
            )
            raise InvalidInput(f"{self._base_url} refused {source}: {exc.message}") from exc
        except openai.APIConnectionError as exc:
            raise Unavailable(f"cannot reach {self._base_url}: {exc}") from exc
        except openai.NotFoundError as exc:
            raise NotFound(f"{self._base_url} does not serve model {self._model!r}: {exc.message}") from exc
        except openai.APIStatusError as exc:
            raise Unavailable(f"{self._base_url} answered {exc.status_code}: {str(exc.body)[:200]}") from exc
        if not response.choices:
            return ""
        return (response.choices[0].message.content or "").strip()


__all__ = ["EndpointTeacher", "LocalTeacher", "Teacher"]
