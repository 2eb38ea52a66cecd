from cdp.services import accessible_sandboxes, get_sandbox_role

SESSION_KEY = "current_sandbox_id"


class CurrentSandboxMiddleware:
    """Sets ``request.sandbox`` and ``request.sandbox_role`` for browser sessions.

    The sandbox is the one chosen in the header switcher (kept in the session), falling back to the
    user's first accessible sandbox. The API does not use this: it names the sandbox in the URL.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.sandbox = None
        request.sandbox_role = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            sandboxes = accessible_sandboxes(user)
            chosen = request.session.get(SESSION_KEY)
            sandbox = (sandboxes.filter(pk=chosen).first() if chosen else None) or sandboxes.first()
            if sandbox is not None:
                request.sandbox = sandbox
                request.sandbox_role = get_sandbox_role(user, sandbox)
                request.session[SESSION_KEY] = sandbox.pk
        return self.get_response(request)
