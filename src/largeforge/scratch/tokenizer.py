"""Train a byte-level BPE tokenizer from a text corpus, offline.

The pre-tokenizer is the Qwen2 split regex followed by byte-level mapping: llama.cpp implements that
exact split (its ``qwen2`` pre-tokenizer), so a GGUF export of our models tokenizes the same way in
llama.cpp as in transformers. The regex also splits digits one by one, which helps small models with
numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from largeforge.errors import InvalidInput
from largeforge.scratch.chat_template import CHATML_TEMPLATE, END_OF_TEXT, IM_END, SPECIAL_TOKENS

# llama.cpp name of the pre-tokenizer below; recorded in the model directory for the GGUF exporter.
GGUF_PRE_TOKENIZER = "qwen2"
QWEN2_SPLIT_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2) -> Any:
    """Train the tokenizer and wrap it as a transformers fast tokenizer with our chat template.

    Args:
        texts: the corpus; any iterable of strings (read once).
        vocab_size: target size including the 256 byte tokens and the special tokens. The result may be
            smaller when the corpus has fewer useful merges.
        min_frequency: a pair must occur this often to be merged.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``eos_token=<|im_end|>``, ``pad_token=<|endoftext|>`` and the
        ChatML template set.

    Raises:
        InvalidInput: the vocabulary size is too small to hold the byte alphabet, or the corpus is empty.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < MIN_VOCAB_SIZE:
        raise InvalidInput(
            f"vocab_size {vocab_size} is too small: a byte-level tokenizer needs at least {MIN_VOCAB_SIZE} "
            "(256 bytes + special tokens); use 512 or more"
        )
    seen = [0]

    def counted(items: Iterable[str]) -> Iterable[str]:
        for item in items:
            if item:
                seen[0] += 1
                yield item

    bpe = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(counted(texts), trainer=trainer)
    if seen[0] == 0:
        raise InvalidInput("the tokenizer corpus is empty: give a file with at least some text")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        unk_token=None,
        model_max_length=32768,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


__all__ = ["GGUF_PRE_TOKENIZER", "MIN_VOCAB_SIZE", "QWEN2_SPLIT_PATTERN", "train_tokenizer"]
