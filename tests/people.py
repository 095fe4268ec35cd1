"""Who the tests are about: the users, each in one role, and the memorials they share (the public
one managed by its family and its funeral director, and a private one). Imported as a module
(``people.OWNER``), so a test names each person where it uses them."""

from __future__ import annotations

from common.models.domain import Memorial, User

OWNER = User(uid="owner-uid", email="owner@example.com")
MEMORIAL_OWNER = User(uid="family-uid")
FUNERAL_DIRECTOR = User(uid="director-uid", role="funeral_director")
ADMIN = User(uid="admin-uid", role="admin", is_admin=True)
STRANGER = User(uid="stranger-uid")
HELPER = User(uid="helper-uid")
EVERYONE = (OWNER, MEMORIAL_OWNER, FUNERAL_DIRECTOR, ADMIN, STRANGER, HELPER)

MEMORIAL = Memorial(
    id="memorial-1",
    owner_uid=MEMORIAL_OWNER.uid,
    funeral_director_uid=FUNERAL_DIRECTOR.uid,
    is_public=True,
    loved_one_name="Ada Lovelace",
)
PRIVATE_MEMORIAL = Memorial(id="memorial-private", owner_uid=MEMORIAL_OWNER.uid, is_public=False)
