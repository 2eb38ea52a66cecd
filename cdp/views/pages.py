from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from cdp.middleware import SESSION_KEY
from cdp.services import accessible_sandboxes, sandbox_counts
from cdp.views.mixins import SandboxRoleRequiredMixin


class DashboardView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "cdp/dashboard.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(counts=sandbox_counts(self.sandbox), **kwargs)


@login_required
@require_POST
def switch_sandbox(request):
    sandbox = accessible_sandboxes(request.user).filter(pk=request.POST.get("sandbox")).first()
    if sandbox is None:
        messages.error(request, "That sandbox does not exist or you have no access to it.")
    else:
        request.session[SESSION_KEY] = sandbox.pk
        messages.success(request, f"Switched to {sandbox}.")
    next_url = request.POST.get("next") or "/"
    return redirect(next_url if next_url.startswith("/") and not next_url.startswith("//") else "/")


@login_required
def no_sandbox(request):
    return render(request, "cdp/no_sandbox.html")
