"""Chat templates: what a model without one gets, spelt so that this binary honours it, said in words."""

from __future__ import annotations

from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.extra_args import ParsedExtraArgs
from llama_launcher.core.plan.flags import FlagGroup, FlagReason

# Built-in llama-server templates for architectures whose GGUFs often ship without a chat template
# (the demo model does): without one, llama-server falls back to ChatML, which Gemma does not speak.
FALLBACK_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma"}


TEMPLATE_FLAGS = frozenset({"--chat-template", "--chat-template-file", "--jinja", "--no-jinja"})


def fallback_template(model: ModelInfo, caps: Capabilities) -> str | None:
    """The built-in template this binary has for a model whose file carries none, if any."""
    fallback = FALLBACK_TEMPLATES.get(model.architecture or "")
    if model.has_chat_template or not fallback or fallback not in caps.builtin_templates:
        return None
    return fallback


def chat_template_given(flags: list[FlagReason]) -> str:
    """In words, which template chat clients of a plan's server get (for a model without its own)."""
    for f in flags:
        if f.group is FlagGroup.MODEL and "--chat-template" in f.args:
            name = f.args[f.args.index("--chat-template") + 1]
            return f"the launcher passes llama-server's built-in '{name}' template for chat clients"
        if f.group is FlagGroup.USER and TEMPLATE_FLAGS & {a.split("=", 1)[0] for a in f.args}:
            return "your extra arguments choose the chat template"
    return "chat clients get llama-server's generic template"


def template_flags(model: ModelInfo, caps: Capabilities, extra: ParsedExtraArgs) -> list[FlagReason]:
    """A built-in template for a model without one, spelt so that this binary honours it.

    With the Jinja engine on (b11434's default), ``--chat-template gemma`` is taken as the literal
    template text "gemma" and every message is lost; built-in names work only with ``--no-jinja``."""
    fallback = fallback_template(model, caps)
    if fallback is None or TEMPLATE_FLAGS & set(extra.flags):
        return []
    args = ["--chat-template", fallback]
    how = ""
    if caps.jinja_default:
        args = ["--no-jinja", *args]
        how = "; --no-jinja because this llama-server reads built-in template names only with its Jinja engine off"
    return [FlagReason(args, f"the model file has no chat template; {model.architecture} models use llama-server's "
                             f"built-in '{fallback}' template{how}", FlagGroup.MODEL)]


def base_model_note(model: ModelInfo | None, flags: list[FlagReason] | None, caps: Capabilities | None) -> str:
    """The window's line for a model without a chat template ('' for every other model): what it most
    likely is, what Try it does with it, and which template chat clients get from this launch."""
    if model is None or model.error or model.has_chat_template:
        return ""
    if flags is not None:
        given = chat_template_given(flags)
    elif caps is not None and (fallback := fallback_template(model, caps)):
        given = f"the launcher passes llama-server's built-in '{fallback}' template for chat clients"
    else:
        given = "chat clients get llama-server's generic template"
    return ("Base model: the file has no chat template, so it was most likely not trained to chat; "
            f"Try it sends your text as a plain completion. {given[0].upper() + given[1:]}.")
