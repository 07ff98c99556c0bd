"""Warren's console: `streamlit run streamlit_app.py`.

The file plays two parts. `streamlit run` imports it once as the server's app (`app`, whose
start-up guards the server and warms the first page: pages/components/start.py); then Streamlit
runs it, as `__main__`, for every page view: the navigation, the sidebar, the page.
"""

import streamlit as st

if __name__ != "__main__":  # the server's app, imported once by `streamlit run`
    from pages.components.start import warm_up

    app = st.App(__file__, lifespan=warm_up)
else:  # a page view
    from dashboard.tuning import tune_garbage_collector
    from pages.components.cluster import show_alarms
    from pages.components.database_banner import show_database_problem
    from pages.components.server_guards import guard_server
    from pages.components.sidebar import render_sidebar
    from pages.components.state import logged_in_session

    st.set_page_config(page_title="Warren", page_icon=":material/hub:", layout="wide")
    tune_garbage_collector()
    guard_server()
    page = st.navigation(
        [
            st.Page(
                "pages/overview.py", title="Tenants", icon=":material/view_list:", default=True
            ),
            st.Page("pages/consumers.py", title="Consumers", icon=":material/memory:"),
            st.Page("pages/tenant.py", title="Tenant", icon=":material/inbox:", url_path="tenant"),
            st.Page("pages/onboarding.py", title="Onboarding", icon=":material/add_link:"),
            st.Page("pages/nodes.py", title="Nodes", icon=":material/dns:"),
            st.Page("pages/audit.py", title="Audit", icon=":material/history:"),
        ]
    )
    # Before logging in (WARREN_AUTH=login) there is no sidebar, and the page shows the login
    # form: it belongs to the page, which a deep link may run on its own.
    session = logged_in_session()
    if session is not None:
        render_sidebar(session)
        show_alarms(session)
        show_database_problem(session)
    page.run()
