#!/usr/bin/python3
"""Reference for tests/template/render_cases.json: renders every case with Python
jinja2 configured as transformers configures it and checks the recorded
expectation (output, or error message) still matches.

  check_cases.py render_cases.json            # verify (a CTest test)
  check_cases.py render_cases.json --update   # refresh expectations after adding cases
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_jinja_env import make_env as make_hf_env  # noqa: E402

NOW = 1722000000  # must match render_cases_test.cc


def make_env():
    return make_hf_env(NOW)


def render(env, case):
    try:
        return {"expected": env.from_string(case["template"]).render(**case["context"])}
    except Exception as e:  # the message is what kaon must report too
        return {"error": str(e).split("\n")[0]}


def main():
    path = sys.argv[1]
    update = "--update" in sys.argv
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    env = make_env()
    bad = 0
    for case in cases:
        got = render(env, case)
        if update:
            case.pop("expected", None)
            case.pop("error", None)
            case.update(got)
            continue
        want = {k: case[k] for k in ("expected", "error") if k in case}
        if got != want:
            bad += 1
            print("MISMATCH %s: jinja2 gives %r, file says %r" % (case["name"], got, want))
    if update:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cases, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print("updated %d cases" % len(cases))
        return 0
    print("%d cases, %d mismatches with jinja2" % (len(cases), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
