from cdp.services import accessible_sandboxes, administered_organizations


def current_sandbox(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_sandbox": request.sandbox,
        "current_role": request.sandbox_role,
        # Evaluated lazily by the template, only where the header is rendered.
        "switchable_sandboxes": accessible_sandboxes(user),
        "is_any_org_admin": administered_organizations(user).exists,
    }
