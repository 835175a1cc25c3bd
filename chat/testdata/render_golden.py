#!/usr/bin/env python3
"""Render golden chat prompts with Python jinja2, configured as Hugging Face
transformers' apply_chat_template configures it. The Go tests in chat/ compare
their renders with golden.json.

Run from chat/testdata:
  python3 render_golden.py > golden.json
  python3 render_golden.py snippets ../jinja/testdata/snippets.json > ../jinja/testdata/snippets_golden.json
The second form renders the small semantic cases the chat/jinja tests use.
Needs only jinja2 (3.1.x); transformers itself is not required.
"""
import datetime
import glob
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

# strftime_now reads this fixed clock so that goldens do not depend on the day
# they were made; the Go tests use the same instant.
FIXED_NOW = datetime.datetime(2026, 1, 2, 3, 4, 5)


class GenerationTracker(Extension):
    """transformers' {% generation %} block, which only marks assistant text;
    rendering passes its body through unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def load(model_dir):
    """Returns ({name: template source}, special tokens) like transformers."""
    with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    ct = cfg.get("chat_template")
    jinja_path = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            ct = f.read()
    if isinstance(ct, list):
        templates = {t["name"]: t["template"] for t in ct}
    else:
        templates = {"default": ct}
    special = {}
    for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        v = token(cfg.get(k))
        if v is not None:
            special[k] = v
    return templates, special


def with_arguments(messages, as_text):
    """Tool-call arguments as dicts (JSON text decoded), or as JSON text (dicts
    encoded; text the client sent is kept as it was)."""
    messages = json.loads(json.dumps(messages))
    for m in messages:
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function", tc)
            args = fn.get("arguments")
            if not as_text and isinstance(args, str):
                fn["arguments"] = json.loads(args)
            elif as_text and isinstance(args, dict):
                fn["arguments"] = json.dumps(args, ensure_ascii=False)
    return messages


def render(env, templates, special, request):
    """mlx-moe's policy on top of apply_chat_template: tool-call arguments
    are dicts; a template that fails on them for another reason than
    raise_exception (DeepSeek's concatenate strings) gets the JSON text."""
    request = json.loads(json.dumps(request))
    messages = request.pop("messages")
    tools = request.pop("tools", None)
    agp = request.pop("add_generation_prompt", False)
    name = "tool_use" if tools is not None and "tool_use" in templates else "default"
    tmpl = env.from_string(templates[name])
    kwargs = {**special, **request}

    def once(msgs):
        return tmpl.render(messages=msgs, tools=tools, documents=None, add_generation_prompt=agp, **kwargs)

    try:
        return once(with_arguments(messages, False))
    except Exception as e:
        if type(e) is TemplateError or not any(m.get("tool_calls") for m in messages):
            raise
        try:
            return once(with_arguments(messages, True))
        except Exception:
            raise e


def outcome(fn):
    try:
        return {"rendered": fn()}
    except TemplateError as e:
        return {"error": str(e), "raised": type(e) is TemplateError}
    except Exception as e:  # Python-level failures inside the template (TypeError, ...)
        return {"error": f"{type(e).__name__}: {e}", "raised": False}


def snippets(path):
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    env = environment()
    out = {}
    for c in cases:
        out[c["name"]] = outcome(lambda: env.from_string(c["template"]).render(**c["vars"]))
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "snippets":
        return snippets(sys.argv[2])
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "conversations.json"), encoding="utf-8") as f:
        convs = json.load(f)
    env = environment()
    out = {"jinja2": jinja2.__version__, "now": FIXED_NOW.isoformat(), "templates": {}}
    for model_dir in sorted(glob.glob(os.path.join(here, "models", "*"))):
        templates, special = load(model_dir)
        results = {}
        for c in convs:
            results[c["name"]] = outcome(lambda: render(env, templates, special, c["request"]))
        out["templates"][os.path.basename(model_dir)] = results
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
