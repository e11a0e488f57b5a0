"""Accounts, roles and the permission checks every data-returning handler goes through.

Two roles:

- **trainee**: sees only their own sessions (history, replays, exports, progress).
- **trainer**: sees every trainee's sessions, exports the CSV and sets assessments. A
  session the trainee marked *private* shows a trainer its scores but never its transcript
  (nor quotes from it).

With ``RAPPORT_AUTH`` off (the default, one person on their own machine) every handler gets
:data:`LOCAL_USER`: a trainer with ``id`` None, who owns the sessions stored with no user.

Passwords are hashed with bcrypt (salted, slow, constant-time verification by the library);
plain text is never stored. Accounts live in the session database (migration ``m003_users``).

Wiring for the app::

    check_bind(settings)                          # before launch: refuse an open bind
    users = UserStore(store)
    demo.launch(auth=gradio_auth(users) if settings.auth else None, ...)
    user = acting_user(settings, users, request.username)   # in each handler
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import bcrypt

from common.settings import Settings
from storage import DuplicateError, SessionStore

if TYPE_CHECKING:
    from sim.practice import Practice, PracticeSession

UserRole = Literal["trainee", "trainer"]
ROLES: tuple[str, ...] = get_args(UserRole)
BCRYPT_ROUNDS = 12
"""bcrypt work factor for new hashes (2^12 rounds, a few hundred ms). Tests pass fewer."""
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores (bcrypt>=5: rejects) anything longer
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
LOOPBACK_NAMES = ("localhost",)


class PermissionDenied(PermissionError):
    """The acting user may not see or do this; the message can be shown to them."""


class UserError(ValueError):
    """A bad user name, role or password, or an unknown / duplicate user."""


class UnsafeBind(RuntimeError):
    """Serving on a non-loopback address with sign-in off, without explicit confirmation."""


@dataclass(frozen=True)
class User:
    """Who is acting. ``name`` is the account name and the ``user_id`` stored on sessions;
    None only for :data:`LOCAL_USER`."""

    name: str | None
    role: UserRole
    created_at: str | None = None

    @property
    def id(self) -> str | None:
        return self.name

    @property
    def is_trainer(self) -> bool:
        return self.role == "trainer"

    @property
    def is_local(self) -> bool:
        return self.name is None


LOCAL_USER = User(name=None, role="trainer")
"""The single-user-mode user (auth off): a trainer who owns the sessions with no user."""


class OwnedSession(Protocol):
    """What the role checks need of a session (``storage.Session`` has both)."""

    @property
    def user_id(self) -> str | None: ...

    @property
    def private(self) -> bool: ...


# --- passwords -------------------------------------------------------------------------------
def check_password(password: str) -> None:
    """Raise :class:`UserError` unless ``password`` is acceptable for a new hash."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"The password must be at least {MIN_PASSWORD_CHARS} characters.")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise UserError(f"The password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8).")
    if "\x00" in password:
        raise UserError("The password can't contain a NUL character.")


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """A salted bcrypt hash (``$2b$...``); two calls on one password give different hashes."""
    check_password(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password_hash: str, password: str) -> bool:
    """Does ``password`` match ``password_hash``? Constant-time (bcrypt's ``checkpw``)."""
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES or b"\x00" in raw:
        return False
    try:
        return bool(bcrypt.checkpw(raw, password_hash.encode("ascii")))
    except ValueError:  # not a bcrypt hash
        return False


def normalise_name(name: str) -> str:
    """Names are case-insensitive slugs: 1-64 of ``a-z 0-9 . _ -``, starting alphanumeric."""
    norm = name.strip().lower()
    if not NAME_RE.fullmatch(norm):
        raise UserError(
            f"Invalid user name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return norm


def _role(role: str) -> UserRole:
    if role == "trainee":
        return "trainee"
    if role == "trainer":
        return "trainer"
    raise UserError(f"Unknown role {role!r}: use trainee or trainer.")


# --- accounts ------------------------------------------------------------------------------
class UserStore:
    """Accounts in the session database. Safe to share between threads."""

    def __init__(self, store: SessionStore, rounds: int = BCRYPT_ROUNDS) -> None:
        self.store = store
        self.rounds = rounds
        self._dummy: str | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _user(row: dict[str, object]) -> User:
        return User(
            name=str(row["name"]), role=_role(str(row["role"])), created_at=str(row["created_at"])
        )

    def add_user(self, name: str, role: str, password: str) -> User:
        """Create an account; raise :class:`UserError` if the name is taken or invalid."""
        name, r = normalise_name(name), _role(role)
        hashed = hash_password(password, self.rounds)
        try:
            created = self.store.insert_user(name, r, hashed)
        except DuplicateError:
            raise UserError(f"A user named {name!r} already exists.") from None
        return User(name=name, role=r, created_at=created)

    def get(self, name: str) -> User | None:
        try:
            row = self.store.user_row(normalise_name(name))
        except UserError:
            return None
        return self._user(row) if row else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password matches, else None. An unknown name costs the same hash
        check as a wrong password, so response time doesn't reveal which names exist."""
        try:
            row = self.store.user_row(normalise_name(name))
        except UserError:
            row = None
        if row is None:
            verify_password(self._dummy_hash(), password)
            return None
        return self._user(row) if verify_password(str(row["password_hash"]), password) else None

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password; raise :class:`UserError` for an unknown user."""
        norm = normalise_name(name)
        if not self.store.update_password_hash(norm, hash_password(password, self.rounds)):
            raise UserError(f"No user named {norm!r}.")

    def list_users(self) -> list[User]:
        return [self._user(r) for r in self.store.user_rows()]

    def _dummy_hash(self) -> str:
        with self._lock:
            if self._dummy is None:
                self._dummy = hash_password("not-a-real-password", self.rounds)
            return self._dummy


def gradio_auth(users: UserStore) -> Callable[[str, str], bool]:
    """The ``auth=`` callable for ``gr.Blocks.launch``."""

    def check(username: str, password: str) -> bool:
        return users.authenticate(username, password) is not None

    return check


def acting_user(settings: Settings, users: UserStore | None, username: str | None) -> User:
    """The user a handler acts for: :data:`LOCAL_USER` with auth off; else the signed-in
    account (``gr.Request.username``), or :class:`PermissionDenied` if there is none."""
    if not settings.auth:
        return LOCAL_USER
    user = users.get(username) if users is not None and username else None
    if user is None:
        raise PermissionDenied("Sign in first.")
    return user


# --- role checks -----------------------------------------------------------------------------
def is_owner(user: User, session: OwnedSession) -> bool:
    """The session was stored under this user (LOCAL_USER owns sessions with no user)."""
    return session.user_id == user.id


def can_view_session(user: User, session: OwnedSession) -> bool:
    """Trainers see every session (a private one's scores only); trainees their own."""
    return user.is_trainer or (user.id is not None and is_owner(user, session))


def visible_transcript(user: User, session: OwnedSession) -> bool:
    """May this user read the session's words (transcript, quotes, rewrites)? A private
    session's transcript is for its owner only; trainers get its scores."""
    return can_view_session(user, session) and (not session.private or is_owner(user, session))


def require_view(user: User, session: OwnedSession) -> None:
    if not can_view_session(user, session):
        raise PermissionDenied("That session belongs to another trainee.")


def require_trainer(user: User) -> None:
    if not user.is_trainer:
        raise PermissionDenied("Only trainers can do that.")


# --- binding ---------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Raise :class:`UnsafeBind` before serving a non-loopback host with sign-in off, unless
    ``RAPPORT_ALLOW_PUBLIC`` confirms it."""
    if is_loopback(settings.host) or settings.auth or settings.allow_public:
        return
    raise UnsafeBind(
        f"Refusing to serve on {settings.host!r} without sign-in: anyone who can reach it "
        "could read every session. Turn sign-in on (RAPPORT_AUTH=on, then add accounts with "
        "'rapport users add NAME --role trainer'), bind to 127.0.0.1, or set "
        "RAPPORT_ALLOW_PUBLIC=true to confirm an open server."
    )


# --- assessments -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """A persona a trainer set as an assessment, for one trainee or (to None) all."""

    id: int
    persona_id: str
    assigned_by: str | None
    assigned_to: str | None
    created_at: str
    kind: str = "assessment"


def assign(
    store: SessionStore,
    user: User,
    persona_id: str,
    assigned_to: str | None = None,
    kind: str = "assessment",
) -> Assignment:
    """Trainers only: set ``persona_id`` for one trainee (``assigned_to``) or all (None)."""
    require_trainer(user)
    to = None
    if assigned_to is not None:
        target = UserStore(store).get(assigned_to)
        if target is None or target.role != "trainee":
            raise UserError(f"No trainee named {assigned_to!r}.")
        to = target.name
    aid = store.insert_assignment(persona_id, user.id, to, kind)
    return next(a for a in assignments_for(store, user) if a.id == aid)


def assignments_for(store: SessionStore, user: User) -> list[Assignment]:
    """Trainers: every assignment. Trainees: theirs and those set for all trainees."""
    out = [Assignment(**r) for r in store.assignment_rows()]
    if user.is_trainer:
        return out
    return [a for a in out if a.assigned_to is None or a.assigned_to == user.id]


def start_assessment(practice: Practice, user: User, assignment_id: int) -> PracticeSession:
    """Start a session in assessment mode (no hints) for one of the user's assignments."""
    found = [a for a in assignments_for(practice.store, user) if a.id == assignment_id]
    if not found:
        raise PermissionDenied("That assessment isn't assigned to you.")
    session = practice.start(found[0].persona_id, user.id)
    practice.store.set_mode(session.id, "assessment", assignment_id)
    return session
