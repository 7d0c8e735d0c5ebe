"""Where the CLI's API token comes from: the option/variable or a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from huleedu_cli.api_token import bearer_headers, read_api_token
from huleedu_cli.errors import InputError


class TestReadApiToken:
    def test_no_token_sends_no_header(self) -> None:
        assert read_api_token(None, None) is None
        assert bearer_headers(None) == {}

    def test_a_given_token_is_sent_as_a_bearer(self) -> None:
        token = read_api_token(" abc.def.ghi\n", None)
        assert bearer_headers(token) == {"Authorization": "Bearer abc.def.ghi"}

    def test_a_token_file_is_read_without_its_newline(self, tmp_path: Path) -> None:
        path = tmp_path / "token"
        path.write_text("abc.def.ghi\n")
        assert read_api_token(None, path) == "abc.def.ghi"

    def test_both_sources_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="not both"):
            read_api_token("abc", tmp_path / "token")

    def test_a_missing_or_empty_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="cannot read the API token file"):
            read_api_token(None, tmp_path / "missing")
        empty = tmp_path / "empty"
        empty.write_text("\n")
        with pytest.raises(InputError, match="is empty"):
            read_api_token(None, empty)
