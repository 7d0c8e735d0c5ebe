from __future__ import annotations

import hashlib
import uuid

from submission_service.domain.data_lifecycle import subject_hash, subject_kind
from submission_service.domain.identity import Identity


class TestSubjectHash:
    def test_is_the_documented_sha256_of_kind_and_value(self) -> None:
        expected = hashlib.sha256(b"huleedu-erasure-v1:user_id:learner-7").hexdigest()
        assert subject_hash(Identity(user_id="learner-7")) == expected

    def test_a_token_is_hashed_in_its_canonical_form(self) -> None:
        token = uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")
        expected = hashlib.sha256(
            b"huleedu-erasure-v1:anonymous_token:6f9619ff-8b86-d011-b42d-00c04fc964ff"
        ).hexdigest()
        assert subject_hash(Identity(anonymous_token=token)) == expected
        assert subject_kind(Identity(anonymous_token=token)) == "anonymous_token"

    def test_a_user_id_that_spells_a_token_is_another_subject(self) -> None:
        token = uuid.uuid4()
        assert subject_hash(Identity(user_id=str(token))) != subject_hash(
            Identity(anonymous_token=token)
        )
