"""Extra arguments: split like the platform's shell, owned flags refused, never a shell."""

from __future__ import annotations

import pytest

from llama_launcher.core.extra_args import ExtraArgsError, parse_extra_args, split_args


def test_posix_and_windows_splitting() -> None:
    assert split_args("--alias 'my model' -n 5", windows=False) == ["--alias", "my model", "-n", "5"]
    assert split_args(r'--alias "my model" --path C:\models\x', windows=True) == ["--alias", "my model", "--path", r"C:\models\x"]
    assert split_args(r'-p "say \"hi\""', windows=True) == ["-p", 'say "hi"']
    with pytest.raises(ExtraArgsError, match="unbalanced"):
        split_args('-p "oops', windows=True)
    with pytest.raises(ExtraArgsError, match="unbalanced"):
        split_args("-p 'oops", windows=False)


def test_key_value_negative_numbers_and_spec_flags() -> None:
    r = parse_extra_args("--temp=0.5 --threads -1 --spec-type ngram-mod", windows=False)
    assert r.flags == ["--temp", "--threads", "--spec-type"] and r.has_spec_flags
    with pytest.raises(ExtraArgsError, match="^--port is not allowed"):
        parse_extra_args("--port=1234", windows=False)
    with pytest.raises(ExtraArgsError, match="does not know --nope"):
        parse_extra_args("--nope", known_flags={"--temp"}, windows=False)
    assert parse_extra_args("", windows=False).argv == []
