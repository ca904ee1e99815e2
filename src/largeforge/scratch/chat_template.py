"""The ChatML-style chat template our offline base models ship with, tools included.

The ``{% generation %}`` markers are what lets transformers compute an assistant-token mask
(``return_assistant_tokens_mask=True``) and TRL train on assistant tokens only; a template without
them silently trains on the prompt too.

Tools follow Qwen2.5 (Hermes) so that tool-calling data in that format trains our models as is:

- ``apply_chat_template(messages, tools=[...])`` opens with a system turn: the system message's text
  (when the conversation has one), then ``# Tools`` with each OpenAI tool as JSON on its own line
  inside ``<tools></tools>``, then how to call one: ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>``.
- An assistant message with ``tool_calls`` renders its content (if any) and one such block per call,
  inside the generation markers, so the calls are trained on. OpenAI's ``arguments`` (a JSON string)
  is written as is; a dict is written as JSON. This is the text ``serving/structured.py`` enforces
  and ``serving/tools.py`` parses.
- A ``tool`` message (a tool's result) keeps its own ``tool`` turn, rendered as any other role.
  Qwen wraps results in ``<tool_response>`` inside a user turn instead; a ``tool`` turn is what this
  template rendered before tools existed, so datasets with tool messages render unchanged.

Without ``tools`` and ``tool_calls`` the rendering is byte for byte what it was before tool support.
"""

from __future__ import annotations

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = [END_OF_TEXT, IM_START, IM_END]

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_INSTRUCTIONS = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def _jinja_string(text: str) -> str:
    """``text`` as a Jinja string literal (single-quoted; the template keeps real newlines in strings)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The assistant turn's closing <|im_end|> sits inside the generation block: the model must learn to
# stop, so the end token is trained on like any other assistant token.
CHATML_TEMPLATE = (
    "{%- if tools -%}"
    "{{ '<|im_start|>system\n' }}"
    "{%- if messages[0]['role'] == 'system' -%}{{ messages[0]['content'] + '\n\n' }}{%- endif -%}"
    "{{ " + _jinja_string(TOOLS_PREAMBLE) + " }}"
    "{%- for tool in tools -%}{{ '\n' }}{{ tool | tojson }}{%- endfor -%}"
    "{{ " + _jinja_string(TOOLS_INSTRUCTIONS + IM_END + "\n") + " }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if tools and loop.first and message['role'] == 'system' -%}"
    "{#- already rendered in the tools system turn -#}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\n' }}"
    "{%- generation -%}"
    "{%- if message['tool_calls'] is defined and message['tool_calls'] -%}"
    "{%- if message['content'] -%}{{ message['content'] + '\n' }}{%- endif -%}"
    "{%- for tool_call in message['tool_calls'] -%}"
    "{%- if tool_call['function'] is defined -%}{%- set tool_call = tool_call['function'] -%}{%- endif -%}"
    "{%- if not loop.first -%}{{ '\n' }}{%- endif -%}"
    "{{ '<tool_call>\n{\"name\": ' + (tool_call['name'] | tojson) + ', \"arguments\": ' }}"
    "{%- if tool_call['arguments'] is string -%}{{ tool_call['arguments'] }}"
    "{%- else -%}{{ tool_call['arguments'] | tojson }}{%- endif -%}"
    "{{ '}\n</tool_call>' }}"
    "{%- endfor -%}"
    "{{ '<|im_end|>' }}"
    "{%- else -%}"
    "{{ message['content'] + '<|im_end|>' }}"
    "{%- endif -%}"
    "{%- endgeneration -%}"
    "{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

__all__ = ["CHATML_TEMPLATE", "END_OF_TEXT", "IM_END", "IM_START", "SPECIAL_TOKENS"]
