"""A supervisor's template cannot reach Python internals: known SSTI payloads fail and run nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.errors import TemplateError
from hub.templates import SAMPLES, Templates


@dataclass
class Agent:
    name: str
    secret: str = "hunter2"


def _payloads(marker: Path) -> list[str]:
    touch = f"touch {marker}"
    return [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        f"{{{{ cycler.__init__.__globals__.os.system('{touch}') }}}}",
        f"{{{{ joiner.__init__.__globals__.os.popen('{touch}').read() }}}}",
        f"{{{{ namespace.__init__.__globals__.os.system('{touch}') }}}}",
        "{{ self._TemplateReference__context }}",
        "{{ self.__init__.__globals__ }}",
        "{{ config }}",
        "{{ config.items() }}",
        "{{ request.application.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ ().__class__.__bases__[0].__subclasses__() }}",
        "{{ agent.__class__.__init__.__globals__ }}",
        "{{ agent.__dict__ }}",
        "{{ agent|attr('__class__') }}",
        "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
        "{{ '{0.__class__.__mro__}'.format('') }}",
        "{{ '%s'|format(agent.__class__) }}",
        "{{ range.__globals__ }}",
        "{{ dict.mro()[1].__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__()[140].__init__.__globals__['sys']"
        f".modules['os'].system('{touch}') }}}}",
        "{% set x = [] %}{{ x.append(1) }}",
        "{{ {}.update(a=1) }}",
        "{{ customer.update({'name': 'changed'}) }}",
        "{% import 'os' as os %}",
        "{% include '/etc/passwd' %}",
        "{% include '../../../../etc/passwd' %}",
        "{{ 9 ** 999999 }}",
        "{{ ((9 ** 99) ** 99) ** 99 }}",
        "{{ 'a' * 100000000 }}",
        "{{ [1] * 100000000 }}",
    ]


def test_known_ssti_payloads_fail_with_template_error_and_run_nothing(tmp_path: Path) -> None:
    company = tmp_path / "templates"
    (company / "email").mkdir(parents=True)
    marker = tmp_path / "pwned"
    templates = Templates([company])
    context = dict(SAMPLES["en"]) | {"agent": Agent("Mira Okafor")}
    for index, payload in enumerate(_payloads(marker)):
        name = f"payload{index}"
        (company / "email" / f"{name}.en.txt.j2").write_text(f"Dear customer,\n{payload}\n", encoding="utf-8")
        started = time.monotonic()
        with pytest.raises(TemplateError) as caught:
            templates.render("email", name, "en", "txt", context)
        assert time.monotonic() - started < 2, payload
        message = str(caught.value)
        assert str(company / "email" / f"{name}.en.txt.j2") in message, payload
        assert "hunter2" not in message and "root:" not in message, payload
    assert not marker.exists()
    assert context["customer"]["name"] == "Harriet Quennell"


def test_harmless_use_of_the_same_features_still_works(tmp_path: Path) -> None:
    company = tmp_path / "templates"
    (company / "chat").mkdir(parents=True)
    (company / "chat" / "ok.en.txt.j2").write_text(
        "{{ agent.name|upper }} {{ '-' * 3 }} {{ 2 ** 10 }} {{ '{}!'.format(customer.name) }}"
        "{% for i in range(3) %} {{ i }}{% endfor %} {{ agent.secret|length }}",
        encoding="utf-8",
    )
    context = dict(SAMPLES["en"]) | {"agent": Agent("Mira Okafor")}
    text = Templates([company]).render("chat", "ok", "en", "txt", context).text
    assert text == "MIRA OKAFOR --- 1024 Harriet Quennell! 0 1 2 7"
