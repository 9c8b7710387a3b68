"""Seeded generator of chat requests for the chat-template conformance test.

Covers: system message or not, multi-turn, assistant tool calls (arguments as
objects, sometimes as JSON strings), tool results, tools lists, both values of
add_generation_prompt, unicode and JSON-heavy content, reasoning text, and
conversations templates reject (non-alternating roles, missing users).
"""
import json
import random

TEXTS = [
    "Hello!",
    "What is the capital of France?",
    "  leading and trailing spaces  ",
    "\n\nnewlines around\n\n",
    "Multi\nline\ncontent\twith tabs",
    "Unicode: héllo wörld, ñandú, Ελληνικά, Кириллица, 中文字符, 日本語, 한국어, עברית, العربية",
    "Emoji 😀🎉👍🏽 and ZWJ 👩‍💻 and flags 🇫🇷",
    '{"json": "heavy", "nested": {"a": [1, 2.5, null, true], "b": "quote \\" inside"}}',
    "Backslashes \\ and \\n literal and 'single' \"double\" quotes",
    "Template-looking text {{ not_a_var }} {% if %} {# comment #}",
    "<think>\nreasoning here\n</think>\n\nThe answer is 42.",
    "<tool_response>\nsome result\n</tool_response>",
    "",
    "Special tokens in text <|eot_id|> <|im_end|> [INST] <<SYS>>",
    "Numbers 1e-05 3.14159 -0 1000000000000",
    "Control \x01\x1f chars and \u2028 separators \u00a0nbsp",
    "Ünïcödé ÇÀPS ßtraße ΣΊΣΥΦΟΣ",
]

SYSTEMS = [
    "You are a helpful assistant.",
    "  Be concise.  \n",
    "Système: réponds en français 🇫🇷",
    'Respond only with JSON like {"answer": "..."}',
]

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                    "required": ["city"]}}},
    {"type": "function", "function": {"name": "search", "description": "Búsqueda en la web — ünïcode",
     "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                     "limit": {"type": "integer", "default": 10, "minimum": 1.5}},
                    "required": ["query"]}}},
    {"type": "function", "function": {"name": "calc", "description": "Evaluate\nmath \"expressions\"",
     "parameters": {"type": "object", "properties": {}}}},
]

ARGS = [
    {"city": "Paris", "unit": "celsius"},
    {"query": "日本の首都", "limit": 3},
    {"expression": "2 ** 10", "precision": 0.001, "exact": False, "extra": None},
    {"nested": {"list": [1, 2.0, 1e-7, 1e20, -3], "empty": {}, "arr": []}, "quote": "\"q\"\\"},
    {},
]

RESULTS = ["22 degrees and sunny", '{"temperature": 22.5, "unit": "celsius"}', "Ошибка: not found", ""]


def _content(rng, multimodal=False):
    if multimodal and rng.random() < 0.5:  # parts: templates either walk them or print their repr
        return [{"type": "image"}, {"type": "text", "text": rng.choice(TEXTS)}]
    return rng.choice(TEXTS)


def _tool_call(rng, as_string):
    args = rng.choice(ARGS)
    name = rng.choice(["get_weather", "search", "calc"])
    return {"id": "call_%d" % rng.randrange(1000), "type": "function",
            "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False) if as_string else args}}


def conversation(rng, flavor):
    """One request. flavor tweaks content for templates with special needs."""
    messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": rng.choice(SYSTEMS)})
    turns = rng.randint(1, 5)
    multimodal = rng.random() < 0.12
    use_tools = rng.random() < 0.4
    string_args = rng.random() < (0.7 if flavor == "deepseek" else 0.15)
    for t in range(turns):
        messages.append({"role": "user", "content": _content(rng, multimodal)})
        last = t == turns - 1
        if use_tools and rng.random() < 0.6:
            calls = [_tool_call(rng, string_args) for _ in range(rng.choice([1, 1, 2]))]
            if flavor == "qwen":
                content = rng.choice(["", "Let me check."])
            elif flavor == "deepseek":
                content = rng.choice([None, None, ""])
            else:
                content = rng.choice([None, "", "Let me check."])
            msg = {"role": "assistant", "content": content, "tool_calls": calls}
            messages.append(msg)
            for _ in calls:
                messages.append({"role": "tool", "content": rng.choice(RESULTS)})
            if not last or rng.random() < 0.5:
                messages.append({"role": "assistant", "content": _content(rng)})
        elif not last or rng.random() < 0.5:
            msg = {"role": "assistant", "content": _content(rng)}
            if flavor == "qwen" and rng.random() < 0.3:
                msg["reasoning_content"] = "I should think about " + rng.choice(TEXTS)
            messages.append(msg)
    # Conversations some templates reject.
    r = rng.random()
    if r < 0.12:
        messages.append({"role": "user", "content": "double user"})
        messages.append({"role": "user", "content": "turn"})
    elif r < 0.17:
        messages = [m for m in messages if m["role"] == "system"] + [{"role": "assistant", "content": "assistant first"}]
    request = {"messages": messages, "add_generation_prompt": rng.random() < 0.5}
    if rng.random() < 0.1:
        request["documents"] = [{"title": "Doc", "text": rng.choice(TEXTS)}]
    if use_tools or rng.random() < 0.2:
        request["tools"] = rng.sample(TOOLS, rng.randint(1, len(TOOLS)))
    kwargs = {}
    if flavor == "llama31meta":
        if rng.random() < 0.25:
            kwargs["builtin_tools"] = rng.sample(["brave_search", "wolfram_alpha", "code_interpreter"], 2)
        if rng.random() < 0.3:
            kwargs["tools_in_user_message"] = False
        if rng.random() < 0.3:
            kwargs["date_string"] = "01 Jan 2025"
        if rng.random() < 0.2:
            for m in request["messages"]:
                if m["role"] == "tool":
                    m["role"] = "ipython"
                    m["content"] = {"result": m["content"], "ok": True}
    request["kwargs"] = kwargs
    return request


def conversations(seed, count, flavor=""):
    rng = random.Random(seed)
    return [conversation(rng, flavor) for _ in range(count)]


# Random template structure for whitespace control: text with spaces, tabs,
# newlines and Unicode spaces around tags carrying -, + or nothing, comments,
# raw blocks and nested if/for. Byte-exact trimming is where renderers differ.
WS_TEXT = ["a", " ", "\n", "  \n", "\t", "x \n  ", "\n\n", " b ", "\r\n", "\u3000", "\n  \t"]


def _ws_piece(rng, depth):
    def mod():
        return rng.choice(["", "", "-", "+"])

    def tag(body):
        return "{%" + mod() + " " + body + " " + mod() + "%}"

    r = rng.random()
    if r < 0.4 or depth > 3:
        return "".join(rng.choice(WS_TEXT) for _ in range(rng.randint(1, 3)))
    if r < 0.55:
        return "{{" + rng.choice(["", "-"]) + " loop.index if loop is defined else 'v' " + rng.choice(["", "-"]) + "}}"
    if r < 0.65:
        return "{#" + mod() + " c " + mod() + "#}"
    if r < 0.7:
        return tag("raw") + _ws_seq(rng, depth + 5) + tag("endraw")
    if r < 0.85:
        body = tag("if " + rng.choice(["true", "false"])) + _ws_seq(rng, depth + 1)
        if rng.random() < 0.3:
            body += tag("else") + _ws_seq(rng, depth + 1)
        return body + tag("endif")
    if r < 0.95:
        return tag("for i in [1, 2]") + _ws_seq(rng, depth + 1) + tag("endfor")
    return tag("set x = 1")


def _ws_seq(rng, depth):
    return "".join(_ws_piece(rng, depth) for _ in range(rng.randint(1, 4)))


def whitespace_templates(seed, count):
    rng = random.Random(seed)
    return [_ws_seq(rng, 0) for _ in range(count)]
