"""A custom training loop for `method: custom`: plain PyTorch, run under LargeForge's job wrapper.

LargeForge hands over the validated data, the tokenizer and the model path; the loop reports metrics
with ``ctx.log``, writes checkpoints with ``ctx.save_checkpoint`` and the final model to ``ctx.final_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM


def train(ctx: Any) -> None:
    torch.manual_seed(ctx.seed)
    model = AutoModelForCausalLM.from_pretrained(ctx.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(ctx.options.get("learning_rate", 1e-3)))
    start = 0
    if ctx.resume_from is not None:
        model = AutoModelForCausalLM.from_pretrained(ctx.resume_from)
        optimizer = torch.optim.AdamW(model.parameters(), lr=float(ctx.options.get("learning_rate", 1e-3)))
        optimizer.load_state_dict(torch.load(Path(ctx.resume_from) / "optimizer.pt"))
        start = int(Path(ctx.resume_from).name.split("-")[-1])
    texts = [_as_text(row, ctx.tokenizer) for row in ctx.train_dataset]
    model.train()
    for step in range(start + 1, ctx.max_steps + 1):
        batch = ctx.tokenizer(texts[(step - 1) % len(texts)], return_tensors="pt")
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        ctx.log(step, loss=loss.item(), learning_rate=optimizer.param_groups[0]["lr"])
        if step % int(ctx.options.get("save_every", 5)) == 0:

            def save(directory: Path) -> None:
                model.save_pretrained(directory)
                torch.save(optimizer.state_dict(), directory / "optimizer.pt")

            ctx.save_checkpoint(step, save)
    model.save_pretrained(ctx.final_dir)


def _as_text(row: dict[str, Any], tokenizer: Any) -> str:
    if "messages" in row:
        return str(tokenizer.apply_chat_template(row["messages"], tokenize=False))
    return str(row.get("text", ""))
