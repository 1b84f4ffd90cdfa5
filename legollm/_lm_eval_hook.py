"""Tell lm-evaluation-harness about the ``legollm`` model type, so ``lm_eval --model
legollm`` works from the plain ``lm_eval`` command.

lm-eval (0.4) fills its model registry from its own list and from modules that
have been imported; it reads no entry points for models. So installing LegoLLM
puts ``legollm_lm_eval.pth`` in site-packages, whose one line imports this module
when Python starts. It imports nothing heavy: it waits for ``lm_eval.models`` (the
module that fills lm-eval's registry) to be imported, then adds ``legollm`` to the
registry as a "module:class" string, so neither torch nor LegoLLM's model code is
loaded until a run asks for the model (:mod:`legollm.evaluation.harness`).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

WATCHED = "lm_eval.models"
TARGET = "legollm.evaluation.harness:LegoLLMHarness"


def register() -> None:
    from lm_eval.api.registry import model_registry

    if "legollm" not in model_registry:
        model_registry.register("legollm", target=TARGET)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds ``lm_eval.models`` the usual way, and registers once it has run."""

    def find_spec(self, name, path=None, target=None):
        if name != WATCHED:
            return None
        sys.meta_path.remove(self)  # one use; the usual finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def run_then_register(module) -> None:
                run(module)
                register()

            spec.loader.exec_module = run_then_register
        return spec


def install() -> None:
    if WATCHED in sys.modules:
        register()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


install()
