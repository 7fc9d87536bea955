"""Renders runtime/model/fixtures/chat-cases.json with the reference renderer and writes the expected prompt
strings and token ids that runtime/model/chat-template.test.ts compares against.

With transformers importable (the GPU machine), the reference is transformers' own
`AutoTokenizer.from_pretrained(<vendored folder>).apply_chat_template(..., tokenize=False)`; without it, the
same Jinja environment transformers builds (sandboxed, trim_blocks, lstrip_blocks, loopcontrols, its tojson).
Token ids are only written when transformers is present (they need the Rust tokenizer).

Usage: python3 scripts/chat-template-fixtures.py [OUTPUT.json]   (default: the fixture file in the repo)
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
tok_dir = root / "runtime/model/tokenizers/qwen2.5"
cases_file = root / "runtime/model/fixtures/chat-cases.json"
out_file = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "runtime/model/fixtures/chat-expected.json"

spec = json.loads(cases_file.read_text(encoding="utf-8"))

try:
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    renderer = f"transformers {transformers.__version__} apply_chat_template"

    def render(messages, tools, add_generation_prompt):
        return tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False
        )

    def encode(text):
        return tokenizer.encode(text, add_special_tokens=False)

except ImportError:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    config = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    template = env.from_string(config["chat_template"])
    special = {k: config[k] for k in ("bos_token", "eos_token", "pad_token") if config.get(k) is not None}
    renderer = f"jinja2 {jinja2.__version__} with transformers' chat-template environment"

    def render(messages, tools, add_generation_prompt):
        return template.render(messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, **special)

    encode = None

expected = {"renderer": renderer, "cases": {}}
for case in spec["cases"]:
    tools = spec["tools"] if case["useTools"] else None
    text = render(case["messages"], tools, case["addGenerationPrompt"])
    entry = {"text": text}
    if encode is not None:
        entry["ids"] = encode(text)
    expected["cases"][case["name"]] = entry

out_file.write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
print(f"wrote {len(expected['cases'])} renderings by {renderer} to {out_file}")
