#!/usr/bin/env python3
"""Writes testdata/tokenizer/chat_golden_extra.json: more Jinja coverage for the chat-template
interpreter. Templates in the style of other model families (Gemma, Phi-3, DeepSeek-R1
distill, Mistral v0.3) and feature mixes (filters, tests, nested loops, whitespace control),
rendered with jinja2 configured like transformers' apply_chat_template. Runs anywhere jinja2
is installed (no tokenizers/transformers needed). Usage: make_chat_extra.py OUT_JSON"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
    json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


env.globals["raise_exception"] = raise_exception
# The C++ test fixes strftime_now's clock at 2024-07-26 12:00 UTC.
env.globals["strftime_now"] = lambda f: datetime.datetime(2024, 7, 26, 12).strftime(f)

T = {}
T["gemma"] = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
T["phi3"] = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
T["r1like"] = """{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor -%}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"""
T["filters"] = "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(', ') }}|{{ messages | map(attribute='role') | unique | list | length }}|{{ (messages | first).role | upper }}|{{ messages | last | tojson }}|{{ messages[0] is mapping }}{{ messages[0].content is string }}{{ 3 is divisibleby 3 }}|{{ {'b': 1, 'a': [1.5, none, true]} | tojson }}|{{ messages|length > 2 and messages[1]['role'] in ['assistant', 'system'] }}"
T["loops"] = """{%- for m in messages if m.role != 'system' -%}
  {{ loop.index }}/{{ loop.length }}:{{ m.role[0] | upper }}{{ m.role[1:] }}{% if not loop.last %}, {% endif %}
{%- endfor %}
{% for i in range(2) %}
    {% for j in range(i, 3) %}
        [{{ i }}{{ j }}{{ loop.revindex0 }}]
    {% endfor %}
{% endfor %}
{#- comment #}
  {%- set x = messages | length -%}
x={{ x * 2 }} {{ x / 4 }} {{ -x }} {{ x ** 2 }} {{ 'a' ~ x ~ none }} {{ '%d' if true }}"""
T["mistral_v3ish"] = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported!") }}
    {%- endif %}
{%- endfor %}
"""
T["macros"] = """{%- macro render(m, prefix='<', suffix='>') -%}
{{ prefix }}{{ m.role }}{{ suffix }}{{ m.content | trim }}
{%- endmacro -%}
{%- macro count_users(msgs) -%}{{ msgs | selectattr('role', 'equalto', 'user') | list | length }}{%- endmacro -%}
{% for m in messages %}{{ render(m) }}{% if not loop.last %}|{% endif %}{% endfor %}
users={{ count_users(messages) }} {{ render(messages[0], suffix='] ') }}
{%- if add_generation_prompt %}{{ render({'role': 'assistant', 'content': ''}, prefix='[') }}{% endif %}"""
convs = [
  [{"role":"user","content":"Hello!"}],
  [{"role":"system","content":"Sys"},{"role":"user","content":" Q1 "},{"role":"assistant","content":"<think>hmm</think> A1\n"},{"role":"user","content":"Q2"}],
  [{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c 你好 \u3000"}],
]
cases = []
for name, src in T.items():
    for ci, conv in enumerate(convs):
        for agp in (False, True):
            case = {"name": name, "source": src, "conversation": ci, "add_generation_prompt": agp}
            try:
                case["rendered"] = env.from_string(src).render(
                    messages=conv, add_generation_prompt=agp, bos_token="<s>", eos_token="</s>")
            except Exception as e:
                case["error"] = str(e)
            cases.append(case)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump({"conversations": convs, "cases": cases}, f, ensure_ascii=False, indent=1)
