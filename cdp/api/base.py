"""Base classes for the REST API.

Sandbox-scoped resources live under ``/api/sandboxes/<sandbox_id>/…``. ``SandboxScopedViewSet``
resolves the sandbox from the URL, answers 404 when the caller has no role there (never revealing
that it exists), and checks the role each method needs: viewers read, ``write_role`` writes.
"""

from django.http import Http404
from rest_framework import permissions, viewsets

from cdp.choices import Role
from cdp.services.access import sandbox_and_role


class NotOffered:
    """Hides an action inherited from ModelViewSet (``create = NotOffered()``): the router only routes
    what ``hasattr`` finds, so the method is neither routed, nor advertised in ``Allow``, nor in the
    schema, and answers 405."""

    def __get__(self, instance, owner):
        raise AttributeError("this action is not offered")


class HasSandboxRole(permissions.BasePermission):
    message = "Your role in this sandbox does not allow this."

    def has_permission(self, request, view):
        required = Role.VIEWER if request.method in permissions.SAFE_METHODS else view.write_role
        if not view.sandbox_role.allows(required):
            self.message = f"This needs the {Role(required).label.lower()} role in this sandbox."
            return False
        return True


class SandboxScopedViewSet(viewsets.ModelViewSet):
    write_role = Role.MARKETER
    permission_classes = [permissions.IsAuthenticated, HasSandboxRole]

    def initial(self, request, *args, **kwargs):
        # Authentication runs first (inside super().initial), so resolve the sandbox lazily after it.
        self.format_kwarg = self.get_format_suffix(**kwargs)
        self.perform_authentication(request)
        if request.user.is_authenticated:
            # One answer for "no such sandbox" and "not yours": ids of other tenants can't be probed.
            self.sandbox, self.sandbox_role = sandbox_and_role(request.user, kwargs["sandbox_id"])
            if self.sandbox_role is None:
                raise Http404("No sandbox with this id.")
        super().initial(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset.none()
        return self.queryset.model.objects.for_sandbox(self.sandbox)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["sandbox"] = getattr(self, "sandbox", None)
        return context

    def perform_create(self, serializer):
        serializer.save(sandbox=self.sandbox)
