"""Who is acting, and what they may touch.

Every handler takes the Gradio request last and resolves the acting user from it
(``request.username``; :data:`training.users.LOCAL_USER` with sign-in off). The role checks
run on the server, because any handler can be called through the Gradio API as well as from
the page; a refusal reaches the page and the API caller as the same Gradio error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import gradio as gr

from common.settings import Settings
from storage import Session, SessionStore
from training.users import PermissionDenied, User, UserStore, acting_user, require_trainer

Request = gr.Request | None
"""What every handler takes last: Gradio fills it in (``request.username``)."""


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """Show a role check's refusal (``PermissionDenied``) to the user as a Gradio error; an
    API caller gets the same message."""
    try:
        yield
    except PermissionDenied as exc:
        raise gr.Error(str(exc), title="Not allowed", print_exception=False) from None


class Access:
    """The acting user of a request, and the checks every tab shares."""

    def __init__(self, settings: Settings, accounts: UserStore, store: SessionStore) -> None:
        self.settings = settings
        self.accounts = accounts
        self.store = store

    def who(self, request: Request) -> User:
        """The signed-in user (refused with sign-in on and nobody signed in)."""
        with refused():
            return acting_user(self.settings, self.accounts, getattr(request, "username", None))

    def trainer(self, request: Request) -> User:
        """The signed-in user, if they are a trainer."""
        user = self.who(request)
        with refused():
            require_trainer(user)
        return user

    def own(self, user: User, session_id: str) -> Session:
        """The session, if it is the acting user's own (to continue, end, retry or hint)."""
        try:
            rec = self.store.get_session(session_id)
        except KeyError:
            raise gr.Error("There is no such session.", print_exception=False) from None
        if rec.user_id != user.id:
            with refused():
                raise PermissionDenied("That session belongs to someone else.")
        return rec

    def trainee_names(self) -> list[str]:
        return [str(u.name) for u in self.accounts.list_users() if u.role == "trainee"]


__all__ = ["Access", "Request", "refused"]
