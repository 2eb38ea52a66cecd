"""Access mixins for pages. Roles are decided by cdp.services.access, the same rules as the API."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from cdp.choices import Role


class SandboxRoleRequiredMixin(LoginRequiredMixin):
    """The page works on ``request.sandbox``; reading needs ``read_role``, posting ``write_role``."""

    read_role = Role.VIEWER
    write_role = Role.MARKETER

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.sandbox is None:
            messages.info(request, "You have no sandbox yet. Ask an organization admin for access.")
            return redirect("cdp:no-sandbox")
        required = self.read_role if request.method in ("GET", "HEAD", "OPTIONS") else self.write_role
        if not request.sandbox_role.allows(required):
            raise PermissionDenied(
                f"This needs the {Role(required).label.lower()} role in sandbox '{request.sandbox.name}'."
            )
        self.sandbox = request.sandbox
        return super().dispatch(request, *args, **kwargs)
