import msgspec
import pytest

from puras_common.job_tokens import InvalidJobToken, JobClaims, mint, read_claims, verify

KEY = b"k" * 32
CLAIMS = JobClaims(project_id="p1", job_id="j1", attempt=1, runner="r-1", exp=1_000)


def test_a_minted_token_verifies_and_names_its_job() -> None:
    token = mint(KEY, CLAIMS)
    assert token.startswith("pjt_")
    assert verify(KEY, token, now=999) == CLAIMS
    assert read_claims(token) == CLAIMS


def test_another_key_an_edited_body_or_a_late_use_is_refused() -> None:
    token = mint(KEY, CLAIMS)
    with pytest.raises(InvalidJobToken, match="not valid"):
        verify(b"x" * 32, token, now=0)
    forged = mint(b"x" * 32, msgspec.structs.replace(CLAIMS, project_id="p2"))
    body = forged.split(".")[0]
    with pytest.raises(InvalidJobToken, match="not valid"):
        verify(KEY, body + "." + token.split(".")[1], now=0)
    with pytest.raises(InvalidJobToken, match="expired"):
        verify(KEY, token, now=1_000)


@pytest.mark.parametrize(
    "token", ["", "puras_live_abc.def", "pjt_", "pjt_abc", "pjt_!!!.x", "pjt_" + "a" * 2000]
)
def test_what_is_not_a_token_is_refused_with_a_message(token: str) -> None:
    with pytest.raises(InvalidJobToken):
        read_claims(token)


def test_a_runner_id_that_cannot_be_a_subject_token_is_never_minted() -> None:
    with pytest.raises(ValueError, match="cannot be a subject token"):
        mint(KEY, msgspec.structs.replace(CLAIMS, runner="a.b"))
