"""The console's state: each user's Session (its settings, its HTTP client, its AMQP connection),
and what is built on it once and shared by every browser session of that user: the history
store, the shared polls, the charts' sources. Pages get their session from `current_session`."""

import threading

import streamlit as st
from streamlit.errors import StreamlitAuthError

from dashboard.actions.access import Access, access_of, log_in
from dashboard.actions.audit import audit_log
from dashboard.broker.session import Session
from dashboard.errors import SettingsError, WarrenError
from dashboard.logins import Credentials, KeptLogins
from dashboard.people import Person, person_from_claims
from dashboard.reads.counts_over_time import CountsOverTime
from dashboard.reads.history import History, open_history
from dashboard.reads.models import ConsumerReport, Overview
from dashboard.reads.nodes import Cluster
from dashboard.reads.poll import SharedPoll, cluster_poll, consumers_poll, overview_poll
from dashboard.reads.queue_detail import QueueDetail, fetch_queue_detail
from dashboard.settings import Settings, load_settings
from pages.components.entry import behind_the_entry_script
from pages.components.errors import or_error
from pages.components.formatting import literal

LOGIN = "warren-login"
# The query parameter, and the session state's key, of the vhost a browser session looks at.
VHOST = "vhost"
PICKED_VHOST = "warren-vhost"
# The browser's cookie holds the token of a kept login; the session state, the token it set and
# the cookie the page must still write (an empty one clears it).
COOKIE = "warren_login"
TOKEN = "warren-login-token"
COOKIE_TO_WRITE = "warren-login-cookie"


def current_session() -> Session:
    """This page's session: with WARREN_AUTH=login, the user's who logged in (until then the
    login form and nothing else). A bad setting is a one-line error and nothing else."""
    behind_the_entry_script()
    session = logged_in_session()
    _write_cookie()
    if session is None:
        show_login(_loaded_settings())
        st.stop()
    return session


def logged_in_session() -> Session | None:
    """This browser session's Session in the vhost it looks at, or None while it has to log in
    (the page shows the form)."""
    settings = _loaded_settings()
    if settings.auth == "service":
        return _in_picked_vhost(_shared_session(settings))
    if settings.auth == "oidc":
        person = signed_in_person(settings)
        # Someone the roles leave out sees nothing but the sign-in page's sentence.
        if person is None or person.role is None:
            return None
        return _in_picked_vhost(_shared_session(settings)).acting_for(person)
    login = st.session_state.get(LOGIN) or _kept_login(settings)
    if not login:
        return None
    return _in_picked_vhost(_shared_session(settings.as_user(*login)))


def _in_picked_vhost(session: Session) -> Session:
    """The session in the vhost of `?vhost=` (kept for this browser session, so that a page
    the sidebar opens without it stays there), else WARREN_VHOST's. A vhost the user may not
    see is a sentence, and nothing else."""
    default = session.settings.vhost
    picked = st.query_params.get(VHOST) or st.session_state.get(PICKED_VHOST) or default
    if picked == default:
        st.session_state.pop(PICKED_VHOST, None)
        st.query_params.pop(VHOST, None)
        return session
    visible = or_error(session.vhosts)
    if visible is not None and picked not in visible:
        visible = or_error(lambda: session.vhosts(fresh=True))
    if visible is None:
        st.stop()
    if picked not in visible:
        st.error(
            f"There is no vhost {literal(picked)} that user {literal(session.username)} may "
            f"see. The vhosts it may see: {literal(', '.join(visible))}.",
            icon=":material/dns:",
        )
        st.session_state.pop(PICKED_VHOST, None)
        st.stop()
    st.session_state[PICKED_VHOST] = st.query_params[VHOST] = picked
    return _shared_session(session.settings.model_copy(update={"vhost": picked}))


def visible_vhosts(session: Session) -> list[str]:
    """The vhosts the session's user may see; none while the broker cannot say."""
    try:
        return session.vhosts()
    except WarrenError:
        return []


def pick_vhost(vhost: str) -> None:
    """Look at `vhost` from now on (WARREN_VHOST's is the default, left out of the URL)."""
    st.session_state[PICKED_VHOST] = st.query_params[VHOST] = vhost


@st.cache_resource(show_spinner=False)
def _kept_logins(seconds: float) -> KeptLogins:
    return KeptLogins(seconds)


def _kept_login(settings: Settings) -> Credentials | None:
    """The login this browser kept from before a reload, checked with the broker again like a
    login through the form; None (and the form) when there is none or it no longer holds."""
    token = st.context.cookies.get(COOKIE)
    kept = _kept_logins(settings.login_keep_seconds)
    credentials = kept.redeem(token) if token else None
    if credentials is None:
        return None
    try:
        verified = log_in(settings, *credentials)
    except WarrenError:
        kept.forget(token)
        return None
    _shared_session(verified.settings, verified)
    st.session_state[LOGIN] = credentials
    st.session_state[TOKEN] = token
    return credentials


def _keep_login(settings: Settings, credentials: Credentials) -> None:
    if settings.login_keep_seconds:
        token = _kept_logins(settings.login_keep_seconds).keep(credentials)
        st.session_state[TOKEN] = token
        st.session_state[COOKIE_TO_WRITE] = token


def _write_cookie() -> None:
    """Sets (or clears) the login cookie in the browser: only a script can, in Streamlit. The
    token is URL-safe base64, so it goes into the script as it is."""
    token = st.session_state.pop(COOKIE_TO_WRITE, None)
    if token is None:
        return
    seconds = int(_loaded_settings().login_keep_seconds) if token else 0
    script = (
        f'document.cookie = "{COOKIE}={token}; Path=/; Max-Age={seconds}; SameSite=Strict" '
        '+ (location.protocol === "https:" ? "; Secure" : "");'
    )
    with st.sidebar:
        st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def _loaded_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        st.error(literal(str(exc)), icon=":material/settings_alert:")
        st.stop()


# Keyed by the settings' fingerprint: each configuration (an edited .env) and each user who
# logged in gets its own; a bounded number, so old ones do not pile up.
@st.cache_resource(show_spinner=False, max_entries=32)
def _session(fingerprint: str, _settings: Settings, _verified: Session | None) -> Session:
    # A console that starts marks the moves a killed one left unfinished (see the Audit page).
    audit_log(_settings).mark_interrupted()
    return _verified or Session(_settings)


def _shared_session(settings: Settings, verified: Session | None = None) -> Session:
    """The one Session of these settings; `verified`, a session that just logged in, becomes it
    unless the user has one already."""
    session = _session(settings.fingerprint(), settings, verified)
    if verified is not None and session is not verified:
        verified.close()
    return session


def signed_in_person(settings: Settings) -> Person | None:
    """The person this browser signed in as through the identity provider (Streamlit's
    `st.user`, from their ID token), with the role WARREN_ROLES gives them; None before."""
    if not st.user.is_logged_in:
        return None
    return person_from_claims(st.user.to_dict(), settings.roles)


def show_sign_in(settings: Settings) -> None:
    st.title("Warren")
    person = signed_in_person(settings)
    if person is not None:
        st.error(
            f"You are signed in as {literal(person.shown)}, and WARREN_ROLES gives you no role "
            "in Warren: ask whoever runs it for one.",
            icon=":material/block:",
        )
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")
        return
    st.caption(
        "Sign in with your team's account: what you may do here follows from your groups "
        "(WARREN_ROLES)."
    )
    if st.button("Sign in", type="primary", icon=":material/login:"):
        try:
            st.login()
        except StreamlitAuthError as exc:
            st.error(
                "WARREN_AUTH=oidc needs the identity provider in .streamlit/secrets.toml "
                f"([auth]): {literal(str(exc))}",
                icon=":material/settings_alert:",
            )


def show_login(settings: Settings) -> None:
    if settings.auth == "oidc":
        show_sign_in(settings)
        return
    st.title("Warren")
    st.caption(
        f"Log in with your user on the broker at {literal(settings.management_url)}: its "
        "permissions apply to everything you see and do here."
    )
    with st.form("login"):
        username = st.text_input("User", key="login-user")
        password = st.text_input("Password", type="password", key="login-password")
        if not st.form_submit_button("Log in", type="primary"):
            return
    verified = or_error(lambda: log_in(settings, username, password))
    if verified is None:
        return
    _shared_session(verified.settings, verified)
    credentials = Credentials(username, password)
    st.session_state[LOGIN] = credentials
    _keep_login(settings, credentials)
    st.rerun()


def log_out() -> None:
    st.session_state.pop(LOGIN, None)
    token = st.session_state.pop(TOKEN, None)
    if token:
        _kept_logins(_loaded_settings().login_keep_seconds).forget(token)
        st.session_state[COOKIE_TO_WRITE] = ""


def shared_access(session: Session) -> Access:
    """What this session's user may do (the session asks the broker at most every 30 s); while
    the broker cannot say, the console only looks (the core would refuse changes anyway)."""
    try:
        return access_of(session)
    except WarrenError as exc:
        return Access(
            user=session.username,
            tags=[],
            refusal=f"Warren cannot ask the broker what {session.username!r} may do ({exc})",
        )


def _key(session: Session) -> str:
    return session.settings.fingerprint()


@st.cache_resource(show_spinner=False, max_entries=32)
def _history(fingerprint: str, _session: Session) -> History | None:
    return open_history(_session.settings)


@st.cache_resource(show_spinner=False, max_entries=32)
def _overview_poll(fingerprint: str, _session: Session) -> SharedPoll[Overview]:
    return overview_poll(_session, _history(fingerprint, _session))


@st.cache_resource(show_spinner=False, max_entries=32)
def _consumers_poll(fingerprint: str, _session: Session) -> SharedPoll[ConsumerReport]:
    return consumers_poll(_session)


@st.cache_resource(show_spinner=False, max_entries=32)
def _cluster_poll(fingerprint: str, _session: Session) -> SharedPoll[Cluster]:
    return cluster_poll(_session)


@st.cache_resource(show_spinner=False, max_entries=32)
def _counts_over_time(fingerprint: str, _session: Session) -> CountsOverTime:
    return CountsOverTime(_session.settings, _history(fingerprint, _session))


@st.cache_data(ttl=5, show_spinner=False, max_entries=64)
def _queue_detail(fingerprint: str, _session: Session, queue: str) -> QueueDetail:
    return fetch_queue_detail(_session, queue)


def queue_detail(session: Session, queue: str) -> QueueDetail:
    """A queue's arguments and the broker's samples of its counts, shared for a few seconds."""
    return _queue_detail(_key(session), session, queue)


def shared_history(session: Session) -> History | None:
    """The history store the overview poll records in, shared like it; None when its file
    cannot be opened."""
    return _history(_key(session), session)


def after_action(session: Session, *queues: str) -> None:
    """An action ended: poll now, so that the numbers the page shows next are from after it.
    The actions mark the queues they name as changed; `queues` are those only the page knows
    (where a requeue sent dead letters back by their x-death)."""
    session.changed(*queues)
    for poll in (shared_overview_poll(session), shared_consumers_poll(session)):
        poll.refresh()


def warm_default_polls(settings: Settings) -> None:
    """With the service user, the default vhost's overview poll started, and beside it what
    every page's sidebar asks first (the user's tags, the vhosts, the cluster poll), so that a
    first page finds them ready (pages/components/start.py)."""
    if settings.auth == "login":
        return
    session = _shared_session(settings)
    threading.Thread(
        target=_warm_sidebar, args=(session,), daemon=True, name="warren-warm-up-sidebar"
    ).start()
    shared_overview_poll(session).get()


def _warm_sidebar(session: Session) -> None:
    shared_access(session)
    visible_vhosts(session)
    shared_cluster_poll(session).get()


def shared_overview_poll(session: Session) -> SharedPoll[Overview]:
    return _overview_poll(_key(session), session)


def shared_consumers_poll(session: Session) -> SharedPoll[ConsumerReport]:
    return _consumers_poll(_key(session), session)


def shared_cluster_poll(session: Session) -> SharedPoll[Cluster]:
    return _cluster_poll(_key(session), session)


def shared_counts_over_time(session: Session) -> CountsOverTime:
    return _counts_over_time(_key(session), session)
