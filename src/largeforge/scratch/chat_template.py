"""The ChatML-style chat template our offline base models ship with.

The ``{% generation %}`` markers are what lets transformers compute an assistant-token mask
(``return_assistant_tokens_mask=True``) and TRL train on assistant tokens only; a template without
them silently trains on the prompt too.
"""

from __future__ import annotations

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = [END_OF_TEXT, IM_START, IM_END]

# The assistant turn's closing <|im_end|> sits inside the generation block: the model must learn to
# stop, so the end token is trained on like any other assistant token.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\n' }}"
    "{%- generation -%}{{ message['content'] + '<|im_end|>' }}{%- endgeneration -%}"
    "{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

__all__ = ["CHATML_TEMPLATE", "END_OF_TEXT", "IM_END", "IM_START", "SPECIAL_TOKENS"]
