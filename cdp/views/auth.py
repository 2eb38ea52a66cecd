from django.contrib.auth import views as auth_views
from django.core.cache import cache

MAX_FAILED_LOGINS = 10
LOCKOUT_SECONDS = 300


class ThrottledLoginView(auth_views.LoginView):
    """Login that refuses further attempts from an address after repeated failures."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def _key(self):
        return f"login-failures:{self.request.META.get('REMOTE_ADDR', '')}"

    def post(self, request, *args, **kwargs):
        if cache.get(self._key(), 0) >= MAX_FAILED_LOGINS:
            form = self.get_form()
            form.add_error(None, "Too many failed sign-in attempts. Wait five minutes and try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = self._key()
        cache.add(key, 0, LOCKOUT_SECONDS)
        cache.incr(key)
        return super().form_invalid(form)
