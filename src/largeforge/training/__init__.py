"""Training: one recipe format for every method, a shared spine, exact resume, live progress.

from largeforge.training import load_recipe, run_training
result = run_training(load_recipe("examples/recipes/sft.yaml"))
"""

from largeforge.training.recipe import load_recipe, recipe_json_schema, validate_recipe
from largeforge.training.runner import resume_training, run_training

__all__ = ["load_recipe", "recipe_json_schema", "resume_training", "run_training", "validate_recipe"]
